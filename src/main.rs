fn main() {
    let path = std::env::args().nth(1).unwrap();
    let t = rhscope::etl::Trace::open(&path).unwrap();
    let h = t.header();
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    let mut ev = t.events();
    while let Some(Ok(e)) = ev.next_event() { lo = lo.min(e.timestamp); hi = hi.max(e.timestamp); }
    println!("{} {} {} {} {} {}", h.clock.reference_raw, h.clock.start_filetime, h.perf_freq, h.boot_time.unwrap().timestamp_nanos_opt().unwrap()/100 + 116444736000000000, lo, hi);
}
