//! The HTTP cell: ch24 with one and two worker processes, and nginx serving the same
//! page when it is installed, each under `wrk` (50 connections, keep-alive, one wrk
//! thread pinned to the generator CPU).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use harness::loadgen::ServerUsage;
use harness::procfs::Proto;

use super::report::{Cell, Sample};
use super::servers::{Binaries, Maker, Model, Running, pinned_command};
use super::{Placement, Timing};

const CONNECTIONS: u32 = 50;

/// Ok(Err(why)) when the cell cannot run here (no wrk), with how to fix it.
pub fn run_cell(
    binaries: &Binaries,
    timing: Timing,
    placement: Placement,
) -> anyhow::Result<Result<Cell, String>> {
    if which("wrk").is_none() {
        return Ok(Err(
            "http: wrk is not installed; install it with `apt-get install wrk` (Debian, Ubuntu)"
                .into(),
        ));
    }
    let mut contenders: Vec<(String, Maker, Vec<String>)> = Vec::new();
    let mut nginx_config = None;
    for workers in [1, 2] {
        let Some(c) = binaries.http(workers) else {
            bail!("ch24 was not built");
        };
        contenders.push((c.label.clone(), Maker::Workbook, c.argv.clone()));
    }
    // nginx serves the very page ch24 serves, from a folder of its own in the system's
    // temporary directory: root's nginx runs its worker as `nobody`, who must be able to
    // reach the page (the output folder may sit below a private directory).
    let site = tempfile::Builder::new()
        .prefix("workbook-bench-nginx-")
        .tempdir()
        .context("create nginx's folder")?;
    let mut skipped = None;
    match which("nginx") {
        Some(nginx) => {
            let page = fetch_page(&contenders[0].2, placement, None)?;
            let (argv, config) = nginx_setup(&nginx, site.path(), &page)?;
            // Measured only once it is seen serving those same bytes (a 403 page is fast,
            // and wrong).
            let served = fetch_page(&argv, placement, Some((site.path(), &config)));
            match served {
                Ok(body) if body == page => {
                    nginx_config = Some(config);
                    contenders.push(("nginx (1 worker)".into(), Maker::Nginx, argv));
                }
                Ok(_) => skipped = Some("http: nginx did not serve ch24's page; left out".into()),
                Err(e) => skipped = Some(format!("http: nginx did not start ({e:#}); left out")),
            }
        }
        None => {
            skipped = Some(
                "http: nginx is not installed, so not compared; `apt-get install nginx-light`"
                    .to_string(),
            )
        }
    }
    let window = timing.window.max(Duration::from_secs(1));
    eprintln!(
        "bench: http (ch24 under wrk): {} servers x {} rounds",
        contenders.len(),
        timing.rounds
    );
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); contenders.len()];
    for _ in 0..timing.rounds {
        for (i, (label, maker, argv)) in contenders.iter().enumerate() {
            let port = harness::peer::free_port().map_err(anyhow::Error::msg)?;
            if let (Maker::Nginx, Some(config)) = (maker, &nginx_config) {
                write_nginx_config(site.path(), config, port)?;
            }
            let mut server = Running::start_with(argv, Proto::Tcp, port, placement.server_cpu)
                .with_context(|| format!("http: {label}"))?;
            let before = ServerUsage::read(server.pid);
            let wrk = run_wrk(port, window, placement.generator_cpu)
                .with_context(|| format!("http: wrk against {label}"))?;
            let after = ServerUsage::read(server.pid);
            server.stop();
            let cpu = after.cpu.saturating_sub(before.cpu).as_secs_f64();
            let requests = wrk.requests_per_sec * window.as_secs_f64();
            samples[i].push(Sample {
                ops_per_sec: wrk.requests_per_sec,
                p50_us: wrk.p50_us,
                p99_us: wrk.p99_us,
                // wrk reports no per-connection counts.
                fairness: f64::NAN,
                server_cpu_us_per_op: if requests > 0.0 {
                    cpu * 1e6 / requests
                } else {
                    0.0
                },
                server_load: cpu / window.as_secs_f64(),
                pss_kib: after.pss_kib,
                processes: after.processes,
                generator_load: wrk.cpu.as_secs_f64() / window.as_secs_f64(),
                resent: 0,
                failures: wrk.errors,
            });
        }
    }
    let labels = contenders
        .iter()
        .map(|(label, maker, _)| (label.clone(), Model::Http, *maker))
        .collect();
    let mut cell = Cell::from_rows(
        "http",
        "ch24's HTTP server under wrk, 50 keep-alive connections",
        format!("wrk -t1 -c{CONNECTIONS} -d{}s, GET /", window.as_secs()),
        labels,
        samples,
    );
    if let Some(skip) = skipped {
        cell.workload.push_str(&format!(" ({skip})"));
    }
    Ok(Ok(cell))
}

/// A program on `PATH`, or in /usr/sbin (where Debian puts nginx, off a user's PATH).
fn which(program: &str) -> Option<std::path::PathBuf> {
    harness::template::resolve_program(program)
        .or_else(|_| harness::template::resolve_program(&format!("/usr/sbin/{program}")))
        .ok()
}

/// nginx's configuration for one port: `nginx-PORT.conf` in its folder.
fn write_nginx_config(dir: &Path, config: &str, port: u16) -> anyhow::Result<()> {
    let path = dir.join(format!("nginx-{port}.conf"));
    std::fs::write(&path, config.replace("{port}", &port.to_string()))
        .with_context(|| format!("write {}", path.display()))
}

/// Starts a server and GETs / once: the body, if the status is 200. `nginx` is its
/// folder and configuration, written for the port first.
fn fetch_page(
    argv: &[String],
    placement: Placement,
    nginx: Option<(&Path, &str)>,
) -> anyhow::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let port = harness::peer::free_port().map_err(anyhow::Error::msg)?;
    if let Some((dir, config)) = nginx {
        write_nginx_config(dir, config, port)?;
    }
    let server = Running::start_with(argv, Proto::Tcp, port, placement.server_cpu)?;
    let mut stream = std::net::TcpStream::connect(server.addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.take(1 << 20).read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the response has no end of head")?;
    let status_line = String::from_utf8_lossy(&response[..split]);
    if !status_line.starts_with("HTTP/1.1 200") {
        bail!(
            "GET / answered {}",
            status_line.lines().next().unwrap_or_default()
        );
    }
    Ok(response[split + 4..].to_vec())
}

/// A folder with the page; returns nginx's command line and its configuration, in
/// which `{port}` is to be replaced (the file `nginx-{port}.conf` is written per round).
fn nginx_setup(nginx: &Path, dir: &Path, page: &[u8]) -> anyhow::Result<(Vec<String>, String)> {
    let www = dir.join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::write(www.join("index.html"), page)?;
    // Root's nginx runs its worker as `nobody`, who must be able to read the page.
    for d in [dir, &www] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
    }
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log;\nevents {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         \x20 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         \x20 default_type text/html;\n\
         \x20 server {{\n    listen 127.0.0.1:{{port}} backlog=4096;\n    root {d}/www;\n\
         \x20   location / {{ index index.html; }}\n  }}\n}}\n"
    );
    let argv = vec![
        nginx.display().to_string(),
        "-p".into(),
        dir.display().to_string(),
        "-e".into(),
        format!("{}/error.log", dir.display()),
        "-c".into(),
        format!("{}/nginx-{{port}}.conf", dir.display()),
    ];
    Ok((argv, conf))
}

struct WrkResult {
    requests_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    cpu: Duration,
}

/// Runs wrk to the end and reads its summary. Its CPU time is what our reaped children
/// used meanwhile (getrusage(RUSAGE_CHILDREN)): wrk is the only child reaped in between.
fn run_wrk(port: u16, window: Duration, cpu: Option<usize>) -> anyhow::Result<WrkResult> {
    let argv: Vec<String> = vec![
        "wrk".into(),
        "-t1".into(),
        format!("-c{CONNECTIONS}"),
        format!("-d{}s", window.as_secs().max(1)),
        "--latency".into(),
        format!("http://127.0.0.1:{port}/"),
    ];
    let before = children_cpu();
    // pinned_command sends output to /dev/null, and output() keeps what was set.
    let output = pinned_command(&argv, cpu)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .context("run wrk")?;
    let used = children_cpu().saturating_sub(before);
    if !output.status.success() {
        bail!(
            "wrk ended with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse_wrk(&String::from_utf8_lossy(&output.stdout), used)
}

/// User + system CPU time of every child reaped so far.
fn children_cpu() -> Duration {
    harness::loadgen::cpu_time(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
}

fn parse_wrk(text: &str, cpu: Duration) -> anyhow::Result<WrkResult> {
    let mut result = WrkResult {
        requests_per_sec: 0.0,
        p50_us: 0.0,
        p99_us: 0.0,
        errors: 0,
        cpu,
    };
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["Requests/sec:", rate] => result.requests_per_sec = rate.parse()?,
            ["50%", value] => result.p50_us = micros(value)?,
            ["99%", value] => result.p99_us = micros(value)?,
            ["Non-2xx", "or", "3xx", "responses:", n] => result.errors += n.parse::<u64>()?,
            _ if line.starts_with("Socket errors:") => {
                result.errors += line
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    if result.requests_per_sec == 0.0 {
        bail!("wrk printed no Requests/sec:\n{text}");
    }
    Ok(result)
}

/// wrk's durations: `812.00us`, `1.23ms`, `2.01s`.
fn micros(value: &str) -> anyhow::Result<f64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1e6)
    } else {
        (value, 1.0)
    };
    Ok(number.parse::<f64>()? * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_summary() {
        let text = "Running 1s test @ http://127.0.0.1:1/\n  1 threads and 50 connections\n\
            \x20 Latency Distribution\n     50%  812.00us\n     75%    1.00ms\n     90%    1.10ms\n\
            \x20    99%    2.50ms\n  20000 requests in 1.00s, 2.00MB read\n\
            \x20 Socket errors: connect 0, read 3, write 0, timeout 1\n\
            Requests/sec:  19990.12\nTransfer/sec:      2.00MB\n";
        let r = parse_wrk(text, Duration::ZERO).unwrap();
        assert_eq!(r.requests_per_sec, 19990.12);
        assert_eq!(r.p50_us, 812.0);
        assert_eq!(r.p99_us, 2500.0);
        assert_eq!(r.errors, 4);
    }
}
