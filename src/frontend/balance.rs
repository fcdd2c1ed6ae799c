//! The session balancer: gathers sessions on as few workers as keep each under
//! `server.worker_fill` of a core, and spreads them again as load grows, by asking a
//! worker's sessions to move at their next command boundary.
//!
//! Why move at all: a worker parks (a syscall and a context switch) whenever none of its
//! sessions has anything to do, so sessions spread thin over two workers cost more CPU per
//! statement than the same sessions on one (measured with 8 sysbench clients: 1.17-1.28x).
//! Where a session lands at accept cannot know the load it will bring; its CPU use shows
//! within a period. Only a session that holds no server connection and runs over plain TCP
//! moves (`Session::leaving`); the rest stay where they are until they can.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::state::workers::{Call, WorkerBoard};
use crate::state::SharedState;

/// How often worker loads are read and the plan made again.
const PERIOD: Duration = Duration::from_millis(100);
/// Weight of the last period in a worker's load (the rest: the periods before).
const SMOOTHING: f64 = 0.5;
/// Fewer workers are used only once the load fits them with this margin: gathering
/// sessions lowers their CPU, spreading them raises it, so the two thresholds apart keep a
/// load near one of them from moving sessions back and forth.
const SHRINK_MARGIN: f64 = 0.9;
/// Periods after a move before the next plan: the loads measured meanwhile are partly the
/// old placement's.
const SETTLE_PERIODS: u32 = 3;
/// Unevenness among the workers in use worth moving sessions for: above this share of
/// their mean load, and above this share of the fill.
const UNEVEN: f64 = 0.25;
const UNEVEN_OF_FILL: f64 = 0.1;

/// What the balancer decided: how many workers take new sessions, and, per worker, the
/// share of its sessions that leave and where to.
#[derive(Debug, PartialEq)]
pub(super) struct Plan {
    pub active: usize,
    pub calls: Vec<Option<(f64, usize)>>,
}

/// The plan for workers that used `loads` (cores, smoothed) and serve `sessions`, with
/// `active` of them in use until now and `fill` (share of a core) the most one should carry.
pub(super) fn plan(loads: &[f64], sessions: &[usize], active: usize, fill: f64) -> Plan {
    let n = loads.len();
    let total: f64 = loads.iter().sum();
    let need = |per: f64| ((total / per).ceil() as usize).clamp(1, n.max(1));
    let mut k = active.clamp(1, n.max(1));
    if need(fill) > k {
        k = need(fill);
    } else if need(fill * SHRINK_MARGIN) < k {
        k = need(fill * SHRINK_MARGIN);
    }
    let uneven_min = fill * UNEVEN_OF_FILL;
    let mut calls = vec![None; n];
    let mut load = loads.to_vec();
    // Workers beyond the first k hand all their sessions over, each to the lightest then.
    // Counted as on its way only when they just went out of use: what is still beyond k
    // after that is sessions that cannot move (TLS, a transaction or pin), busy or not,
    // and counting it again every period kept the first k from ever being evened out.
    let shrinking = k < active;
    let mut handed = 0.0;
    for i in k..n {
        if sessions[i] == 0 {
            continue;
        }
        let to = lightest(&load[..k]);
        calls[i] = Some((1.0, to));
        if shrinking {
            handed += load[i];
            load[to] += load[i];
            load[i] = 0.0;
        }
    }
    // Within the first k, unless load is on its way to them: each worker well above their
    // mean gives its excess to the one furthest below it.
    if handed > uneven_min {
        return Plan { active: k, calls };
    }
    let mean = load[..k].iter().sum::<f64>() / k as f64;
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| load[b].total_cmp(&load[a]));
    for &i in &order {
        let excess = load[i] - mean;
        if excess <= uneven_min || excess <= UNEVEN * mean {
            break;
        }
        if sessions[i] < 2 {
            // A lone session cannot be split.
            continue;
        }
        let to = lightest(&load[..k]);
        let room = mean - load[to];
        if room <= uneven_min {
            break;
        }
        let moved = excess.min(room);
        calls[i] = Some((moved / load[i], to));
        load[i] -= moved;
        load[to] += moved;
    }
    Plan { active: k, calls }
}

fn lightest(load: &[f64]) -> usize {
    (0..load.len()).fold(0, |best, i| if load[i] < load[best] { i } else { best })
}

/// A thread's CPU clock, read from another thread (Linux: `pthread_getcpuclockid`).
#[derive(Clone, Copy)]
pub(super) struct CpuClock(libc::clockid_t);

impl CpuClock {
    /// The clock of `thread`, which must not have been joined yet. Elsewhere than Linux:
    /// none, and sessions stay where they were accepted.
    #[cfg(not(target_os = "linux"))]
    pub(super) fn of<T>(_thread: &std::thread::JoinHandle<T>) -> Option<Self> {
        None
    }

    /// The clock of `thread`, which must not have been joined yet.
    #[cfg(target_os = "linux")]
    pub(super) fn of<T>(thread: &std::thread::JoinHandle<T>) -> Option<Self> {
        use std::os::unix::thread::JoinHandleExt;
        let mut id: libc::clockid_t = 0;
        // SAFETY: the handle's thread is not joined, so its pthread_t is valid, and `id` is
        // a live clockid_t to write to.
        let rc = unsafe { libc::pthread_getcpuclockid(thread.as_pthread_t() as _, &mut id) };
        (rc == 0).then_some(CpuClock(id))
    }

    /// CPU time used so far, in microseconds; None once the thread is gone.
    fn micros(self) -> Option<u64> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a live timespec to write to; a clock of a thread that ended gives
        // an error, not undefined behaviour.
        let rc = unsafe { libc::clock_gettime(self.0, &mut ts) };
        (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000)
    }
}

/// What the balancer keeps between periods (each worker's last CPU reading, and how many
/// workers are in use, are on the board).
struct Balancer {
    clocks: Vec<Option<CpuClock>>,
    last_at: Instant,
    loads: Vec<f64>,
    settle: u32,
    generation: u32,
    standing: Vec<Option<(u16, u16)>>,
}

/// Reads the workers' CPU every [`PERIOD`] and posts the calls, until `alive` is gone (the
/// workers stopping). The load figures are kept up to date even with moving turned off
/// (`worker_fill = 0`), for /metrics.
async fn run<T>(clocks: Vec<Option<CpuClock>>, state: SharedState, alive: Weak<T>) {
    let n = clocks.len();
    let mut b = Balancer {
        last_at: Instant::now(),
        loads: vec![0.0; n],
        settle: 0,
        generation: 0,
        standing: vec![None; n],
        clocks,
    };
    b.read_cpu(&state.load().shared.workers);
    // That first reading only sets where each worker's CPU time starts: taken microseconds
    // after `last_at`, it would count everything the thread used before as one period's load
    // (several cores), and the first plan would spread sessions for nothing.
    b.loads.fill(0.0);
    let mut every = tokio::time::interval(PERIOD);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        if alive.upgrade().is_none() {
            return;
        }
        let rt = state.load();
        let board = &rt.shared.workers;
        b.read_cpu(board);
        let fill = f64::from(rt.config.server.worker_fill) / 100.0;
        if fill == 0.0 {
            b.post(
                board,
                &Plan {
                    active: n,
                    calls: vec![None; n],
                },
            );
            continue;
        }
        if b.settle > 0 {
            b.settle -= 1;
            continue;
        }
        let sessions: Vec<usize> = (0..n).map(|i| board.sessions(i)).collect();
        let p = plan(&b.loads, &sessions, board.active(), fill);
        if p.active != board.active() {
            tracing::debug!(workers = p.active, load = ?b.loads, "sessions go to fewer or more workers");
        }
        if b.post(board, &p) {
            b.settle = SETTLE_PERIODS;
        }
    }
}

impl Balancer {
    fn read_cpu(&mut self, board: &WorkerBoard) {
        let now = Instant::now();
        let wall = now.duration_since(self.last_at).as_micros().max(1) as f64;
        self.last_at = now;
        for (i, clock) in self.clocks.iter().enumerate() {
            let Some(cpu) = clock.and_then(CpuClock::micros) else {
                continue;
            };
            let used = cpu.saturating_sub(board.cpu_micros(i)) as f64 / wall;
            self.loads[i] = SMOOTHING * used + (1.0 - SMOOTHING) * self.loads[i];
            board.set_cpu_micros(i, cpu);
        }
    }

    /// Posts the plan's calls that changed, and every call that asks for a share of a
    /// worker's sessions (answered once each); true if a new one asks sessions to move.
    fn post(&mut self, board: &WorkerBoard, p: &Plan) -> bool {
        board.set_active(p.active);
        let mut moves = false;
        for (i, call) in p.calls.iter().enumerate() {
            let want = call.map(|(share, to)| (share_of(share), to as u16));
            let partial = want.is_some_and(|(share, _)| share < Call::ALL);
            if want == self.standing[i] && !partial {
                continue;
            }
            moves |= want.is_some_and(|(share, _)| share > 0);
            self.standing[i] = want;
            self.generation = self.generation.wrapping_add(1).max(1);
            let (share, to) = want.unwrap_or((0, i as u16));
            board.set_call(
                i,
                Call {
                    generation: self.generation,
                    share,
                    to,
                },
            );
        }
        moves
    }
}

fn share_of(f: f64) -> u16 {
    (f.clamp(0.0, 1.0) * f64::from(Call::ALL)).round() as u16
}

/// Starts the balancer on the calling runtime (the control plane's).
pub(super) fn start<T: Send + Sync + 'static>(
    clocks: Vec<Option<CpuClock>>,
    state: &SharedState,
    alive: &Arc<T>,
) {
    // Without every worker's CPU clock a load would read as none, and all sessions would
    // gather on one worker: they stay where they are accepted instead.
    if clocks.iter().any(Option::is_none) || tokio::runtime::Handle::try_current().is_err() {
        tracing::info!(
            "worker CPU clocks unavailable: sessions stay on the worker that accepted them"
        );
        return;
    }
    tokio::spawn(run(clocks, Arc::clone(state), Arc::downgrade(alive)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn light_load_gathers_on_the_first_worker() {
        let p = plan(&[0.30, 0.28], &[4, 4], 2, 0.75);
        assert_eq!(p.active, 1);
        assert_eq!(p.calls, vec![None, Some((1.0, 0))]);
    }

    #[test]
    fn load_near_the_fill_stays_as_it_is() {
        // 0.72 of a core on two workers: gathering it needs it under 0.9 of the fill.
        let p = plan(&[0.36, 0.36], &[4, 4], 2, 0.75);
        assert_eq!(
            p,
            Plan {
                active: 2,
                calls: vec![None, None]
            }
        );
        // The same load on one worker stays there: under the fill.
        let p = plan(&[0.72, 0.0], &[8, 0], 1, 0.75);
        assert_eq!(
            p,
            Plan {
                active: 1,
                calls: vec![None, None]
            }
        );
    }

    #[test]
    fn heavy_load_spreads_over_more_workers() {
        let p = plan(&[0.95, 0.0], &[64, 0], 1, 0.75);
        assert_eq!(p.active, 2);
        let (share, to) = p.calls[0].expect("the first worker gives sessions away");
        assert_eq!(to, 1);
        assert!((share - 0.5).abs() < 1e-9, "half of its load: {share}");
        assert_eq!(p.calls[1], None);
    }

    #[test]
    fn even_load_is_left_alone_and_uneven_load_evened() {
        let p = plan(&[0.9, 0.85, 0.8, 0.0], &[10, 10, 10, 0], 3, 0.75);
        assert_eq!(p.active, 4);
        assert_eq!(p.calls.iter().flatten().count(), 3, "{p:?}");
        assert!(p.calls.iter().flatten().all(|&(_, to)| to == 3), "{p:?}");
        let p = plan(&[0.5, 0.45, 0.55], &[5, 5, 5], 3, 0.75);
        assert_eq!(p.calls, vec![None, None, None]);
    }

    #[test]
    fn workers_out_of_use_hand_over_to_the_lightest() {
        let p = plan(&[0.1, 0.05, 0.2, 0.0], &[3, 2, 5, 0], 4, 0.75);
        assert_eq!(p.active, 1);
        assert_eq!(p.calls, vec![None, Some((1.0, 0)), Some((1.0, 0)), None]);
        let p = plan(&[0.6, 0.5, 0.3, 0.2], &[6, 5, 3, 2], 4, 0.75);
        assert_eq!(p.active, 3, "1.6 cores: three workers under 0.675 each");
        assert_eq!(p.calls[3], Some((1.0, 2)));
    }

    #[test]
    fn a_lone_session_is_not_split() {
        let p = plan(&[0.95, 0.0], &[1, 0], 1, 0.75);
        assert_eq!(p.active, 2);
        assert_eq!(p.calls, vec![None, None]);
        // The heaviest worker has one session: the next one gives instead.
        let p = plan(&[0.9, 0.8, 0.0], &[1, 9, 0], 2, 0.75);
        assert_eq!(p.active, 3);
        assert_eq!((p.calls[0], p.calls[2]), (None, None));
        let (share, to) = p.calls[1].expect("worker 1 gives sessions away");
        assert_eq!(to, 2);
        let want = (0.8 - 1.7 / 3.0) / 0.8;
        assert!((share - want).abs() < 1e-9, "{share}");
    }

    #[test]
    fn a_session_that_cannot_move_yet_does_not_stop_the_others_evening_out() {
        // Worker 2 is out of use but keeps a pinned, idle session: workers 0 and 1 are
        // still evened out.
        let p = plan(&[1.0, 0.3, 0.0], &[10, 4, 1], 2, 0.75);
        assert_eq!(p.active, 2);
        assert_eq!(p.calls[2], Some((1.0, 1)));
        let (share, to) = p.calls[0].expect("worker 0 gives sessions away");
        assert_eq!(to, 1);
        assert!((share - 0.35).abs() < 1e-9, "{share}");
    }

    /// A busy session that cannot move (TLS) on a worker out of use: the workers in use are
    /// evened out all the same. Its load was counted as on its way to them at every period,
    /// so worker 0 carried 0.9 of a core while worker 1 sat idle.
    #[test]
    fn a_busy_session_that_cannot_move_does_not_stop_the_others_evening_out() {
        let p = plan(&[0.9, 0.0, 0.2], &[10, 0, 1], 1, 0.75);
        assert_eq!(p.active, 2);
        assert_eq!(
            p.calls[2],
            Some((1.0, 1)),
            "asked again: it may move by now"
        );
        let (share, to) = p.calls[0].expect("worker 0 gives sessions away");
        assert_eq!(to, 1);
        assert!((share - 0.5).abs() < 1e-9, "{share}");
        // Once in use, the same: still evened out.
        let p = plan(&[0.9, 0.0, 0.2], &[10, 0, 1], 2, 0.75);
        assert!(p.calls[0].is_some(), "{p:?}");
    }
}
