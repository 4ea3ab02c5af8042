//! Prints the Lua source of the Redis backend's append script, so a load test can
//! `SCRIPT LOAD` it and drive it with redis-benchmark (see scripts/load-redis.sh).

fn main() {
    print!("{}", ezenroll::store::redis::append_script());
}
