//! The bench's results: one [`Sample`] per run, medians and spreads per contender, and
//! the three ways out: a Markdown table, JSON, and an SVG chart per cell.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use harness::loadgen::{Measured, PerConnection, ServerUsage};
use serde::Serialize;

use super::servers::{Contender, Maker, Model};
use super::{Placement, Timing};

pub fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// What one run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    pub ops_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub fairness: f64,
    /// The server's CPU time (its whole process tree) per operation.
    pub server_cpu_us_per_op: f64,
    /// The server's CPU use in the window, as a share of one core.
    pub server_load: f64,
    /// PSS summed over the server's processes at the end of the window.
    pub pss_kib: u64,
    pub processes: usize,
    /// The generator's CPU use in the window, as a share of one core.
    pub generator_load: f64,
    pub resent: u64,
    pub failures: u64,
    /// How the service was shared among the connections.
    pub per_connection: PerConnection,
}

impl Sample {
    pub fn from_run(m: &Measured, before: ServerUsage, after: ServerUsage) -> Sample {
        let server_cpu = after.cpu.saturating_sub(before.cpu);
        Sample {
            ops_per_sec: m.ops_per_sec(),
            p50_us: m.latency_us(0.50),
            p99_us: m.latency_us(0.99),
            fairness: m.fairness(),
            server_cpu_us_per_op: if m.ops == 0 {
                0.0
            } else {
                server_cpu.as_secs_f64() * 1e6 / m.ops as f64
            },
            server_load: server_cpu.as_secs_f64() / m.window.as_secs_f64(),
            pss_kib: after.pss_kib,
            processes: after.processes,
            generator_load: m.generator_load(),
            resent: m.resent,
            failures: m.failures,
            per_connection: m.per_connection(),
        }
    }
}

/// Median and range of one figure over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// (max - min) / median, in percent.
    pub spread_pct: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let mut sorted: Vec<f64> = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n == 0 {
            0.0
        } else if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        let (min, max) = (
            sorted.first().copied().unwrap_or(0.0),
            sorted.last().copied().unwrap_or(0.0),
        );
        Spread {
            median,
            min,
            max,
            spread_pct: if median > 0.0 {
                (max - min) / median * 100.0
            } else {
                0.0
            },
        }
    }
}

/// One contender's results in a cell.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub label: String,
    pub model: Model,
    pub maker: Maker,
    pub ops_per_sec: Spread,
    /// Medians over the rounds.
    pub p50_us: f64,
    pub p99_us: f64,
    pub fairness: f64,
    pub server_cpu_us_per_op: f64,
    pub server_load: f64,
    pub pss_kib: f64,
    pub processes: f64,
    pub generator_load: f64,
    pub resent: u64,
    pub failures: u64,
    /// The sharing of the round whose least served connection fared worst: a server
    /// that starves connections in one round of five is not to be hidden by a median.
    pub per_connection: PerConnection,
    /// The workbook server's median ops/s over its C twin's (workbook rows only).
    pub ratio_to_c: Option<f64>,
    pub rounds: Vec<Sample>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub id: String,
    pub title: String,
    pub workload: String,
    pub rows: Vec<Row>,
    /// The Markdown report shows the per-connection table for this cell.
    #[serde(skip)]
    pub per_connection_table: bool,
}

/// The round whose least served connection fared worst: the lowest min / median, then
/// the most starved connections, then the longest wait.
fn worst_round(samples: &[Sample]) -> PerConnection {
    samples
        .iter()
        .map(|s| &s.per_connection)
        .min_by(|a, b| {
            a.min_over_median
                .total_cmp(&b.min_over_median)
                .then(b.starved.cmp(&a.starved))
                .then(b.longest_wait_us.total_cmp(&a.longest_wait_us))
        })
        .cloned()
        .unwrap_or_default()
}

fn median_of(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    Spread::of(&samples.iter().map(f).collect::<Vec<_>>()).median
}

impl Cell {
    pub fn new(
        id: &str,
        title: &str,
        workload: String,
        contenders: &[Contender],
        samples: Vec<Vec<Sample>>,
    ) -> Cell {
        let labels: Vec<(String, Model, Maker)> = contenders
            .iter()
            .map(|c| (c.label.clone(), c.model, c.maker))
            .collect();
        Cell::from_rows(id, title, workload, labels, samples)
    }

    pub fn from_rows(
        id: &str,
        title: &str,
        workload: String,
        labels: Vec<(String, Model, Maker)>,
        samples: Vec<Vec<Sample>>,
    ) -> Cell {
        let mut rows: Vec<Row> = labels
            .into_iter()
            .zip(samples)
            .map(|((label, model, maker), s)| Row {
                label,
                model,
                maker,
                ops_per_sec: Spread::of(&s.iter().map(|x| x.ops_per_sec).collect::<Vec<_>>()),
                p50_us: median_of(&s, |x| x.p50_us),
                p99_us: median_of(&s, |x| x.p99_us),
                fairness: median_of(&s, |x| x.fairness),
                server_cpu_us_per_op: median_of(&s, |x| x.server_cpu_us_per_op),
                server_load: median_of(&s, |x| x.server_load),
                pss_kib: median_of(&s, |x| x.pss_kib as f64),
                processes: median_of(&s, |x| x.processes as f64),
                generator_load: median_of(&s, |x| x.generator_load),
                resent: s.iter().map(|x| x.resent).sum(),
                failures: s.iter().map(|x| x.failures).sum(),
                per_connection: worst_round(&s),
                ratio_to_c: None,
                rounds: s,
            })
            .collect();
        let twins: Vec<(Model, f64)> = rows
            .iter()
            .filter(|r| r.maker == Maker::C)
            .map(|r| (r.model, r.ops_per_sec.median))
            .collect();
        for row in rows.iter_mut().filter(|r| r.maker == Maker::Workbook) {
            if let Some((_, c)) = twins.iter().find(|(m, _)| *m == row.model)
                && *c > 0.0
            {
                row.ratio_to_c = Some(row.ops_per_sec.median / c);
            }
        }
        Cell {
            id: id.to_string(),
            title: title.to_string(),
            workload,
            rows,
            per_connection_table: false,
        }
    }
}

/// The machine the numbers come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cpus: usize,
    pub kernel: String,
    pub rustc: String,
    pub cc: String,
}

impl Machine {
    fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_else(|| "unknown".into());
        let first_line = |program: &str, arg: &str| {
            std::process::Command::new(program)
                .arg(arg)
                .output()
                .ok()
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .next()
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "unknown".into())
        };
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            rustc: first_line("rustc", "--version"),
            cc: first_line("cc", "--version"),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub placement: Placement,
    pub timing: Timing,
    pub quick: bool,
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
    pub cells: Vec<Cell>,
    /// Reference points left out, and why (with how to install what is missing).
    pub skipped: Vec<String>,
}

impl Report {
    pub fn new(timing: Timing, placement: Placement, quick: bool, skipped: Vec<String>) -> Report {
        Report {
            machine: Machine::read(),
            placement,
            timing,
            quick,
            elapsed: Duration::ZERO,
            cells: Vec::new(),
            skipped,
        }
    }

    pub fn markdown(&self) -> String {
        use std::fmt::Write;
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(md, "# Bench: the server models side by side\n");
        let _ = writeln!(
            md,
            "Machine: {} ({} CPUs), Linux {}; {}; {}.  ",
            m.cpu, m.cpus, m.kernel, m.rustc, m.cc
        );
        let _ = writeln!(
            md,
            "Placement: {}. {} round(s) per cell, contenders alternating; each run {} ms of \
             warm-up, then a {} ms window. Figures are medians over the rounds; spread is \
             (max - min) / median of ops/s.{}\n",
            self.placement.describe(),
            self.timing.rounds,
            self.timing.warmup.as_millis(),
            self.timing.window.as_millis(),
            if self.quick {
                " **Quick run: one short round, for shape, not for conclusions.**"
            } else {
                ""
            }
        );
        for cell in &self.cells {
            let _ = writeln!(md, "## {}: {}\n", cell.id, cell.title);
            let _ = writeln!(
                md,
                "Workload: {}. Chart: `{}.svg`.\n",
                cell.workload, cell.id
            );
            let _ = writeln!(
                md,
                "| server | ops/s | spread | p50 µs | p99 µs | fairness | server CPU µs/op | \
                 server CPU | PSS MiB | procs | loadgen CPU | workbook/C |"
            );
            let _ = writeln!(
                md,
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for r in &cell.rows {
                let ratio = match r.ratio_to_c {
                    Some(x) if x < 0.95 => format!("**{x:.2}x**"),
                    Some(x) => format!("{x:.2}x"),
                    None => String::new(),
                };
                let saturated = if r.generator_load > 0.9 {
                    " (saturated)"
                } else {
                    ""
                };
                let fairness = if r.fairness.is_nan() {
                    "n/a".to_string()
                } else {
                    format!("{:.3}", r.fairness)
                };
                let _ = writeln!(
                    md,
                    "| {} | {:.0} | {:.0}% | {:.1} | {:.1} | {} | {:.2} | {:.0}% | {:.1} | {:.0} | {:.0}%{} | {} |",
                    r.label,
                    r.ops_per_sec.median,
                    r.ops_per_sec.spread_pct,
                    r.p50_us,
                    r.p99_us,
                    fairness,
                    r.server_cpu_us_per_op,
                    r.server_load * 100.0,
                    r.pss_kib / 1024.0,
                    r.processes,
                    r.generator_load * 100.0,
                    saturated,
                    ratio
                );
            }
            let notes: Vec<String> = cell
                .rows
                .iter()
                .filter_map(|r| {
                    let reconnects: u64 =
                        r.rounds.iter().map(|s| s.per_connection.reconnects).sum();
                    let mut parts = Vec::new();
                    if r.failures > 0 {
                        parts.push(format!("{} failed connections", r.failures));
                    }
                    if r.resent > 0 {
                        parts.push(format!("{} datagrams resent", r.resent));
                    }
                    if reconnects > 0 {
                        parts.push(format!(
                            "{reconnects} responses that closed their connection"
                        ));
                    }
                    (!parts.is_empty()).then(|| format!("{}: {}", r.label, parts.join(", ")))
                })
                .collect();
            if !notes.is_empty() {
                let _ = writeln!(md, "\nOver all rounds: {}.", notes.join("; "));
            }
            if cell.per_connection_table {
                per_connection_table(&mut md, cell);
            }
            let _ = writeln!(md);
        }
        for skip in &self.skipped {
            let _ = writeln!(md, "Skipped: {skip}  ");
        }
        let _ = writeln!(
            md,
            "\nWall time of the run: {:.0} s.",
            self.elapsed.as_secs_f64()
        );
        md
    }

    /// report.md, report.json and one SVG per cell into `out`.
    pub fn write(&self, out: &Path) -> anyhow::Result<()> {
        let md = out.join("report.md");
        std::fs::write(&md, self.markdown()).with_context(|| format!("write {}", md.display()))?;
        let json = out.join("report.json");
        std::fs::write(&json, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("write {}", json.display()))?;
        for cell in &self.cells {
            let svg = out.join(format!("{}.svg", cell.id));
            chart(cell, &svg).with_context(|| format!("draw {}", svg.display()))?;
        }
        Ok(())
    }
}

/// Each row's sharing among its connections, in its worst round.
fn per_connection_table(md: &mut String, cell: &Cell) {
    use std::fmt::Write;
    let _ = writeln!(
        md,
        "\nPer connection (each server's worst round; responses per connection in the \
         window):\n"
    );
    let _ = writeln!(
        md,
        "| server | conns | min | median | max | min/median | starved | unanswered | failed | \
         worst conn: responses, p99 µs | longest wait ms |"
    );
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &cell.rows {
        let p = &r.per_connection;
        let worst_p99 = p
            .worst_p99_us
            .map_or("none answered".to_string(), |us| format!("{us:.0}"));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {} | {:.2} | {} | {} | {} | {}, {} | {:.1} |",
            r.label,
            p.connections,
            p.min,
            p.median,
            p.max,
            p.min_over_median,
            p.starved,
            p.unanswered,
            p.failed,
            p.worst_responses,
            worst_p99,
            p.longest_wait_us / 1000.0
        );
    }
    let _ = writeln!(
        md,
        "\n*starved*: fewer than a tenth of an equal share (responses / connections); \
         *unanswered*: no response in the window; *failed*: refused, reset or closed early \
         at least once; *longest wait*: the longest one request waited, answered or still \
         waiting when the window closed."
    );
}

/// A horizontal bar per contender: the median ops/s, with a whisker from the slowest to
/// the fastest round, and how many connections starved in its worst round, if any.
/// Workbook servers blue, C twins grey, tokio orange, nginx green.
fn chart(cell: &Cell, path: &Path) -> anyhow::Result<()> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let n = cell.rows.len();
    let height = 120 + 34 * n as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = cell
        .rows
        .iter()
        .map(|r| r.ops_per_sec.max)
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{}: {}", cell.id, cell.title), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(190)
        // 0..n-1 gives n segments, one per contender (the range's ends are inclusive).
        .build_cartesian_2d(0.0..top, (0..n.saturating_sub(1)).into_segmented())?;
    let labels: Vec<String> = cell.rows.iter().map(|r| r.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(n - 1 - *i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc("operations per second (median; whisker: min to max over the rounds)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()?;
    for (k, row) in cell.rows.iter().enumerate() {
        // The first contender at the top.
        let i = n - 1 - k;
        let color = match row.maker {
            Maker::Workbook => RGBColor(52, 101, 164),
            Maker::C => RGBColor(136, 138, 133),
            Maker::Tokio => RGBColor(245, 121, 0),
            Maker::Nginx => RGBColor(78, 154, 6),
        };
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (row.ops_per_sec.median, SegmentValue::Exact(i + 1)),
            ],
            color.filled(),
        );
        bar.set_margin(4, 4, 0, 0);
        chart.draw_series(std::iter::once(bar))?;
        // A rate earned by serving some connections and starving the others says so
        // beside its bar.
        let p = &row.per_connection;
        let label = if p.starved > 0 {
            format!(
                "{:.0} ({} of {} connections starved)",
                row.ops_per_sec.median, p.starved, p.connections
            )
        } else {
            format!("{:.0}", row.ops_per_sec.median)
        };
        chart.draw_series(std::iter::once(Text::new(
            label,
            (row.ops_per_sec.max + top * 0.01, SegmentValue::CenterOf(i)),
            TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        )))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![
                (row.ops_per_sec.min, SegmentValue::CenterOf(i)),
                (row.ops_per_sec.max, SegmentValue::CenterOf(i)),
            ],
            BLACK.stroke_width(2),
        )))?;
    }
    root.present()?;
    Ok(())
}
