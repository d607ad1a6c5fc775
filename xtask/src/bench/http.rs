//! The HTTP cell: ch24 with one and two worker processes, and nginx serving the same
//! page when it is installed, each driven by the bench's own generator in its HTTP mode
//! ([`Workload::Http`]: 50 keep-alive connections, one request in flight on each),
//! which counts every connection's responses: a server that answers some connections
//! and leaves the others waiting shows as such, not as a total rate alone.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use harness::loadgen::Workload;
use harness::procfs::Proto;

use super::report::{Cell, Sample};
use super::servers::{Binaries, Maker, Model, Running};
use super::{Placement, Timing};

const CONNECTIONS: usize = 50;

/// The cell; without nginx, ch24 alone, with a note of how to install nginx.
pub fn run_cell(binaries: &Binaries, timing: Timing, placement: Placement) -> anyhow::Result<Cell> {
    let mut contenders: Vec<(String, Maker, Vec<String>)> = Vec::new();
    let mut nginx_config = None;
    // A fixed pool of 1 and of 2 (one connection per worker: 50 kept-alive connections
    // shut all but one or two out), and the pool that grows with the load (a worker for
    // each connection, up to 64).
    for (workers, max) in [(1, 1), (2, 2), (2, 64)] {
        let Some(c) = binaries.http(workers, max) else {
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
    let workload = Workload::Http { conns: CONNECTIONS };
    eprintln!(
        "bench: http (GET / on {CONNECTIONS} keep-alive connections): {} servers x {} rounds",
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
            let server = Running::start_with(argv, Proto::Tcp, port, placement.server_cpu)
                .with_context(|| format!("http: {label}"))?;
            let sample = super::measure(server, workload, timing, placement)
                .with_context(|| format!("http: {label}"))?;
            samples[i].push(sample);
        }
    }
    let labels = contenders
        .iter()
        .map(|(label, maker, _)| (label.clone(), Model::Http, *maker))
        .collect();
    let mut cell = Cell::from_rows(
        "http",
        "ch24's HTTP server, 50 keep-alive connections",
        super::describe(workload),
        labels,
        samples,
    );
    cell.per_connection_table = true;
    if let Some(skip) = skipped {
        cell.workload.push_str(&format!(" ({skip})"));
    }
    Ok(cell)
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
