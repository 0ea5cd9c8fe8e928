//! The `switchboard` command-line tool.

fn main() {
    println!("switchboard {}", switchboard_gateway::VERSION);
}
