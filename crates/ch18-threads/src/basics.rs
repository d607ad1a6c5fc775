//! The book's first thread programs: `thread1.c` .. `thread4.c`, `mutex.c` and
//! `semaphore.c`.
//!
//! `pthread_create` is `std::thread::spawn` here and `pthread_join` is
//! `JoinHandle::join`: std makes both calls itself (glibc's pthread_create makes the
//! clone(2) system call). A shared counter in C is a plain `long long`; Rust does not
//! let two threads write a plain variable at once (a data race is undefined behaviour),
//! so the racing `num += 1` is written as what it compiles to, three steps: load, add,
//! store (an atomic load and a separate atomic store). The updates get lost exactly as
//! in C, and the program stays defined.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use syscalls::Semaphore;

/// The book's NUM_THREAD.
pub const NUM_THREAD: usize = 100;

/// How long each of the first demos' threads waits between lines.
const TICK: Duration = Duration::from_millis(100);

fn joined<T>(thread: JoinHandle<T>) -> anyhow::Result<T> {
    thread.join().map_err(|_| anyhow!("a thread panicked"))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The CPUs this process may run on: the race needs two at once to show often.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `thread1.c`: a thread that prints five lines, a second apart in the book (a tenth of
/// a second here), and a main that does not wait for it: when main returns, exit()
/// ends the process and every thread in it.
pub fn thread1() -> anyhow::Result<()> {
    let printed = std::sync::Arc::new(AtomicUsize::new(0));
    let count = printed.clone();
    // 1. pthread_create(&t_id, NULL, thread_main, &thread_param)
    let _detached = std::thread::spawn(move || {
        for _ in 0..5 {
            println!("running thread");
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(TICK);
        }
    });
    // 2. The book's main sleeps, hoping that is long enough. Here it is not.
    std::thread::sleep(TICK * 5 / 2);
    println!("end of main");
    println!(
        "the thread printed {} of its 5 lines: when main returns, exit() ends every thread of the process",
        printed.load(Ordering::SeqCst)
    );
    Ok(())
}

/// `thread2.c`: pthread_join waits for the thread and takes what it returned.
pub fn thread2() -> anyhow::Result<()> {
    // 1. pthread_create()
    let thread = std::thread::spawn(|| {
        for _ in 0..5 {
            println!("running thread");
            std::thread::sleep(TICK);
        }
        String::from("Hello, I'am thread~")
    });
    // 2. pthread_join(): main waits here until the thread returns, and gets its value.
    let message = joined(thread)?;
    println!("Thread return message: {message}");
    Ok(())
}

/// `num += n` as the CPU does it: load, add, store. Between the load and the store
/// another thread may store, and its update is lost.
fn racy_add(num: &AtomicI64, n: i64) {
    let v = num.load(Ordering::Relaxed);
    num.store(v + n, Ordering::Relaxed);
}

/// `thread3.c`: two threads add 1..=5 and 6..=10 into one shared sum. Right here, by
/// luck: each thread's work is over before the other's begins.
pub fn thread3() -> anyhow::Result<()> {
    let sum = AtomicI64::new(0);
    std::thread::scope(|s| -> anyhow::Result<()> {
        let sum = &sum;
        let first = s.spawn(move || (1..=5).for_each(|i| racy_add(sum, i)));
        let second = s.spawn(move || (6..=10).for_each(|i| racy_add(sum, i)));
        first.join().map_err(|_| anyhow!("a thread panicked"))?;
        second.join().map_err(|_| anyhow!("a thread panicked"))?;
        Ok(())
    })?;
    println!("result: {}", sum.load(Ordering::SeqCst));
    println!(
        "right, by luck: each thread was done before the other began (thread4 shows why it is luck)"
    );
    Ok(())
}

/// 100 threads, half adding 1 and half subtracting 1, `iterations` times each, through
/// `step`; returns the final value and how long it took.
fn hundred_threads(
    iterations: u64,
    step: impl Fn(&AtomicI64, i64) + Sync,
    whole_loop: Option<&Mutex<()>>,
) -> anyhow::Result<(i64, Duration)> {
    let num = AtomicI64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let threads: Vec<_> = (0..NUM_THREAD)
            .map(|i| {
                let (num, step) = (&num, &step);
                let n = if i % 2 == 0 { 1 } else { -1 };
                s.spawn(move || {
                    // The book's mutex.c locks the adders once around their whole loop.
                    let _turn = match (n, whole_loop) {
                        (1, Some(lock)) => Some(lock.lock().unwrap_or_else(|e| e.into_inner())),
                        _ => None,
                    };
                    for _ in 0..iterations {
                        step(num, n);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().map_err(|_| anyhow!("a thread panicked"))?;
        }
        Ok(())
    })?;
    Ok((num.load(Ordering::SeqCst), started.elapsed()))
}

/// `thread4.c`: 100 threads on one counter, no lock. Returns the (wrong) result.
pub fn thread4(iterations: u64) -> anyhow::Result<i64> {
    println!(
        "{NUM_THREAD} threads ({} add 1, {} subtract 1, {iterations} times each) on {} CPUs, no lock:",
        NUM_THREAD / 2,
        NUM_THREAD / 2,
        cpus()
    );
    let (result, took) = hundred_threads(iterations, racy_add, None)?;
    println!("result: {result} (expected 0), {}", ms(took));
    if result != 0 {
        println!(
            "wrong: num += 1 is load, add, store; two threads that load the same value both store their own sum, and one update is lost"
        );
    } else {
        println!("right this time, by luck: run it again, or with more --iterations");
    }
    Ok(result)
}

/// `mutex.c`: the same 100 threads with a mutex. As in the book, the subtracting
/// threads lock around each update and the adding ones around their whole loop (so they
/// run one after another). Returns the result (0).
pub fn mutex(iterations: u64) -> anyhow::Result<i64> {
    // pthread_mutex_init: a std Mutex (a futex, as glibc's pthread_mutex is underneath).
    let lock = Mutex::new(());
    let (result, took) = hundred_threads(
        iterations,
        |num, n| {
            if n == -1 {
                // pthread_mutex_lock(&mutex); num -= 1; pthread_mutex_unlock(&mutex);
                let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
                racy_add(num, n);
            } else {
                // The adders hold the same lock for their whole loop (below).
                racy_add(num, n);
            }
        },
        Some(&lock),
    )?;
    println!(
        "with a mutex: result: {result} (expected 0), {}: each update inside lock()/unlock(), so no two overlap",
        ms(took)
    );
    Ok(result)
}

/// `semaphore.c`, a producer and a consumer taking turns through one shared slot:
/// first without semaphores (the consumer reads values twice and misses others), then
/// with the book's two (`sem_one`: the slot is full, `sem_two`: the slot is empty).
/// Returns the sum with semaphores.
pub fn semaphore(count: u64) -> anyhow::Result<u64> {
    let expected = count * (count + 1) / 2;
    let slot = AtomicU64::new(0);
    let started = Instant::now();
    let unguarded = std::thread::scope(|s| -> anyhow::Result<u64> {
        let slot = &slot;
        let producer = s.spawn(move || (1..=count).for_each(|v| slot.store(v, Ordering::Relaxed)));
        let consumer = s.spawn(move || (0..count).map(|_| slot.load(Ordering::Relaxed)).sum());
        joined_scoped(producer)?;
        joined_scoped(consumer)
    })?;
    println!(
        "without semaphores: Result: {unguarded} (expected {expected}), {}: the consumer read values twice and missed others",
        ms(started.elapsed())
    );
    // sem_init(&sem_one, 0, 0); sem_init(&sem_two, 0, 1);
    let sem_one = Semaphore::new("&sem_one", 0)?;
    let sem_two = Semaphore::new("&sem_two", 1)?;
    let started = Instant::now();
    let guarded = std::thread::scope(|s| -> anyhow::Result<u64> {
        let (slot, sem_one, sem_two) = (&slot, &sem_one, &sem_two);
        // The book's read(): waits until the slot is empty, fills it, says it is full.
        let producer = s.spawn(move || -> anyhow::Result<()> {
            for v in 1..=count {
                sem_two.wait()?;
                slot.store(v, Ordering::Relaxed);
                sem_one.post()?;
            }
            Ok(())
        });
        // The book's accu(): waits until the slot is full, takes it, says it is empty.
        let consumer = s.spawn(move || -> anyhow::Result<u64> {
            let mut sum = 0;
            for _ in 0..count {
                sem_one.wait()?;
                sum += slot.load(Ordering::Relaxed);
                sem_two.post()?;
            }
            Ok(sum)
        });
        joined_scoped(producer)??;
        joined_scoped(consumer)?
    })?;
    println!(
        "with two semaphores: Result: {guarded} (expected {expected}), {}: the two threads take turns",
        ms(started.elapsed())
    );
    Ok(guarded)
}

fn joined_scoped<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> anyhow::Result<T> {
    thread.join().map_err(|_| anyhow!("a thread panicked"))
}
