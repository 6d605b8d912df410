//! Builds the `rollcall-node` image from host files, with nothing pulled from a registry.
//!
//! The recipe (see `docker/README.md`): a root filesystem tar assembled here from the
//! node binary, busybox (static), iptables (legacy backend), iproute2 `ip`/`tc`,
//! libfaketime (the node's own clock, [`crate::clock`]) and every shared library `ldd`
//! names for them, imported through the engine's `images/create` endpoint (`docker
//! import`). The harness adds the `rollcall-adversary` binary (the `byzantine` nemesis,
//! issue 12). The tag is derived from the binaries' hashes and the entrypoint, so
//! unchanged binaries reuse the image and a change to either makes a new one.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bollard::query_parameters::{CreateImageOptionsBuilder, RemoveImageOptionsBuilder};
use bollard::Docker;
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use tracing::{debug, info};

use crate::DockerError;

/// Bumped whenever the image layout changes, so old cached images are not reused.
pub const RECIPE_VERSION: &str = "rollcall-image-v3";

/// Repository name of node images; the tag is the content hash.
pub const IMAGE_REPO: &str = "rollcall-node";

/// Where the node binary lives inside the image (also the entrypoint).
pub const NODE_PATH_IN_IMAGE: &str = "/usr/local/bin/rollcall-node";

/// Where the adversary binary lives inside the image, when the image has one.
pub const ADVERSARY_PATH_IN_IMAGE: &str = "/usr/local/bin/rollcall-adversary";

/// The workspace binaries that go into a node image: the node (the entrypoint) and,
/// for the harness, the adversary the `byzantine` nemesis runs (issue 12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBinaries {
    /// `rollcall-node` (or any stand-in entrypoint, in tests).
    pub node: PathBuf,
    /// `rollcall-adversary`, if the image should have it.
    pub adversary: Option<PathBuf>,
}

impl ImageBinaries {
    /// An image with the node binary only.
    pub fn node_only(node: &Path) -> Self {
        ImageBinaries {
            node: node.to_path_buf(),
            adversary: None,
        }
    }

    /// (path in the image, host file) of each binary.
    fn in_image(&self) -> Vec<(&'static str, PathBuf)> {
        let mut v = vec![(NODE_PATH_IN_IMAGE, self.node.clone())];
        if let Some(a) = &self.adversary {
            v.push((ADVERSARY_PATH_IN_IMAGE, a.clone()));
        }
        v
    }
}

/// `PATH` inside the image: busybox applets in /bin, iptables/ip/tc in /usr/sbin.
pub const IMAGE_PATH_ENV: &str = "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Busybox applets linked in /bin (only those the host busybox provides are linked).
const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ash", "sleep", "cat", "ls", "ps", "kill", "nc", "wget", "timeout", "echo", "mkdir",
    "rm", "cp", "mv", "grep", "sed", "awk", "head", "tail", "env", "true", "false", "test", "id",
    "ln", "chmod", "touch", "date", "du", "df", "find", "xargs", "sync", "pidof", "netstat",
    "printf", "tr", "wc", "sort", "uname", "hostname", "ping", "tee", "seq", "[",
];

/// A node image that exists in the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `rollcall-node:<16 hex>`: what containers are created from.
    pub name: String,
    /// The engine's image id (`sha256:...`).
    pub id: String,
    /// False when an image with this tag already existed and nothing was built.
    pub built: bool,
}

/// A host tool that goes into the image and the Debian package that provides it.
struct HostTool {
    name: &'static str,
    package: &'static str,
    candidates: &'static [&'static str],
}

const HOST_TOOLS: &[HostTool] = &[
    HostTool {
        name: "busybox",
        package: "busybox-static",
        candidates: &["/bin/busybox", "/usr/bin/busybox", "/sbin/busybox"],
    },
    HostTool {
        name: "xtables-legacy-multi",
        package: "iptables",
        candidates: &[
            "/usr/sbin/xtables-legacy-multi",
            "/sbin/xtables-legacy-multi",
        ],
    },
    HostTool {
        name: "ip",
        package: "iproute2",
        candidates: &["/usr/sbin/ip", "/sbin/ip", "/bin/ip", "/usr/bin/ip"],
    },
    HostTool {
        name: "tc",
        package: "iproute2",
        candidates: &["/usr/sbin/tc", "/sbin/tc"],
    },
    HostTool {
        name: "date",
        package: "coreutils",
        candidates: &["/usr/bin/date", "/bin/date"],
    },
    HostTool {
        name: "libfaketimeMT.so.1",
        package: "libfaketime",
        candidates: &[
            "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
            "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
            "/usr/lib/faketime/libfaketimeMT.so.1",
        ],
    },
];

/// Directories searched for iptables extensions (`libxt_*.so`), dlopen'ed at run time.
const XTABLES_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/xtables",
    "/usr/lib/aarch64-linux-gnu/xtables",
    "/usr/lib/xtables",
    "/lib/xtables",
];

/// The host paths of the tools the recipe needs, found before anything is built.
#[derive(Debug, Clone)]
pub struct HostTools {
    /// Static busybox (Debian `busybox-static`).
    pub busybox: PathBuf,
    /// `xtables-legacy-multi` (Debian `iptables`).
    pub xtables: PathBuf,
    /// iproute2 `ip`.
    pub ip: PathBuf,
    /// iproute2 `tc`.
    pub tc: PathBuf,
    /// The thread-safe libfaketime (Debian `libfaketime`), preloaded into the node.
    pub faketime: PathBuf,
    /// GNU `date` (dynamically linked, unlike busybox): reads the node's fake clock
    /// when run with its preload ([`crate::clock::DYNAMIC_DATE`]).
    pub date: PathBuf,
    /// The iptables extension directory, if the host has one.
    pub xtables_dir: Option<PathBuf>,
}

impl HostTools {
    /// Finds every tool, or names all the missing ones with their packages at once.
    pub fn locate() -> Result<Self, DockerError> {
        let mut found = BTreeMap::new();
        let mut missing = Vec::new();
        for tool in HOST_TOOLS {
            match tool.candidates.iter().map(Path::new).find(|p| p.is_file()) {
                Some(p) => {
                    found.insert(tool.name, p.to_path_buf());
                }
                None => missing.push(format!("{} (package {})", tool.name, tool.package)),
            }
        }
        if !missing.is_empty() {
            return Err(DockerError::MissingHostTools { missing });
        }
        let take = |name: &str| found.get(name).cloned().unwrap_or_default();
        Ok(HostTools {
            busybox: take("busybox"),
            xtables: take("xtables-legacy-multi"),
            ip: take("ip"),
            tc: take("tc"),
            faketime: take("libfaketimeMT.so.1"),
            date: take("date"),
            xtables_dir: XTABLES_DIRS.iter().map(PathBuf::from).find(|p| p.is_dir()),
        })
    }
}

/// The image tag for a node binary alone (see [`image_tag_for`]).
pub fn image_tag(node_binary: &Path) -> Result<String, DockerError> {
    image_tag_for(&ImageBinaries::node_only(node_binary))
}

/// The image tag for a set of binaries: SHA-256 over each binary in turn and
/// [`RECIPE_VERSION`] and the entrypoint, 16 hex.
pub fn image_tag_for(bins: &ImageBinaries) -> Result<String, DockerError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for (dest, src) in bins.in_image() {
        let mut file = std::fs::File::open(&src)
            .map_err(|e| DockerError::io(format!("open {}", src.display()), e))?;
        hasher.update(dest.as_bytes());
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| DockerError::io(format!("read {}", src.display()), e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    hasher.update(RECIPE_VERSION.as_bytes());
    // The entrypoint carries the clock's paths: a change to them is a new image.
    hasher.update(entrypoint_change().as_bytes());
    Ok(hex::encode(hasher.finalize())[..16].to_string())
}

/// Makes sure the image for `node_binary` alone exists (see [`ensure_image_with`]).
pub async fn ensure_image(docker: &Docker, node_binary: &Path) -> Result<ImageRef, DockerError> {
    ensure_image_with(docker, &ImageBinaries::node_only(node_binary)).await
}

/// Makes sure the image for `bins` exists, building it if needed.
///
/// Cheap when cached (one hash and one inspect), so the harness calls it on every run.
pub async fn ensure_image_with(
    docker: &Docker,
    bins: &ImageBinaries,
) -> Result<ImageRef, DockerError> {
    if let Some((_, missing)) = bins.in_image().into_iter().find(|(_, p)| !p.is_file()) {
        return Err(DockerError::NodeBinaryMissing { path: missing });
    }
    // One build at a time per process: concurrent callers then find the cached image
    // instead of importing twice (which leaves an untagged duplicate behind).
    static BUILD_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _build = BUILD_LOCK.lock().await;
    let started = Instant::now();
    let for_tag = bins.clone();
    let tag = tokio::task::spawn_blocking(move || image_tag_for(&for_tag))
        .await
        .map_err(|e| DockerError::io("hash task", std::io::Error::other(e)))??;
    let name = format!("{IMAGE_REPO}:{tag}");
    if let Ok(existing) = docker.inspect_image(&name).await {
        debug!(image = %name, "node image cached");
        return Ok(ImageRef {
            name,
            id: existing.id.unwrap_or_default(),
            built: false,
        });
    }

    // Check the tools first so a missing package is reported before any work.
    let tools = HostTools::locate()?;
    let for_tar = bins.clone();
    let rootfs = tokio::task::spawn_blocking(move || build_rootfs_tar(&for_tar, &tools))
        .await
        .map_err(|e| DockerError::io("rootfs task", std::io::Error::other(e)))??;
    let size = rootfs.len();

    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(IMAGE_REPO)
        .tag(&tag)
        .message(RECIPE_VERSION)
        .changes(vec![
            entrypoint_change(),
            "CMD [\"run\", \"--home\", \"/data\"]".to_string(),
            format!("ENV PATH={IMAGE_PATH_ENV}"),
            "WORKDIR /data".to_string(),
        ])
        .build();
    docker
        .create_image(
            Some(options),
            Some(bollard::body_full(bytes::Bytes::from(rootfs))),
            None,
        )
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| DockerError::api(format!("import image {name}"), e))?;
    let inspected = docker
        .inspect_image(&name)
        .await
        .map_err(|e| DockerError::api(format!("inspect image {name}"), e))?;
    info!(image = %name, bytes = size, elapsed_ms = started.elapsed().as_millis() as u64, "built node image");
    Ok(ImageRef {
        name,
        id: inspected.id.unwrap_or_default(),
        built: true,
    })
}

/// The image's `ENTRYPOINT`: the node binary under `env` with libfaketime preloaded
/// (true time until the harness writes the clock file), so only the node's process
/// sees its fake clock, never an exec'd tool ([`crate::clock`]).
fn entrypoint_change() -> String {
    let mut argv = vec!["/bin/env".to_string()];
    argv.extend(
        crate::clock::faketime_env()
            .iter()
            .map(|(k, v)| format!("{k}={v}")),
    );
    argv.push(NODE_PATH_IN_IMAGE.to_string());
    format!(
        "ENTRYPOINT {}",
        serde_json::to_string(&argv).unwrap_or_default()
    )
}

/// Removes the image built for `node_binary`, if any (benchmarks use it for a cold build).
pub async fn remove_image_for(docker: &Docker, node_binary: &Path) -> Result<bool, DockerError> {
    let name = format!("{IMAGE_REPO}:{}", image_tag(node_binary)?);
    if docker.inspect_image(&name).await.is_err() {
        return Ok(false);
    }
    docker
        .remove_image(
            &name,
            Some(RemoveImageOptionsBuilder::default().force(true).build()),
            None,
        )
        .await
        .map_err(|e| DockerError::api(format!("remove image {name}"), e))?;
    Ok(true)
}

/// One entry of the root filesystem, keyed by its path inside the image.
enum Entry {
    Dir(u32),
    File { src: PathBuf, mode: u32 },
    Symlink(String),
    Bytes(Vec<u8>, u32),
}

/// Assembles the root filesystem tar in memory (about 15 MB plus the binaries).
pub fn build_rootfs_tar(bins: &ImageBinaries, tools: &HostTools) -> Result<Vec<u8>, DockerError> {
    let mut entries: BTreeMap<PathBuf, Entry> = BTreeMap::new();
    let mut elf_files: Vec<PathBuf> = bins.in_image().into_iter().map(|(_, p)| p).collect();
    for (dest, src) in bins.in_image() {
        add_file(&mut entries, dest, &src);
    }
    add_tools(&mut entries, &mut elf_files, tools);

    // iptables extensions are dlopen'ed by path; `ldd` of the main binary cannot see them.
    // Their own dependencies are resolved leniently: an extension we never load may
    // link a library the host lacks.
    let mut lenient: Vec<PathBuf> = Vec::new();
    if let Some(dir) = &tools.xtables_dir {
        let rd = std::fs::read_dir(dir)
            .map_err(|e| DockerError::io(format!("read {}", dir.display()), e))?;
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().to_string();
            if (name.starts_with("libxt_") || name.starts_with("libipt_")) && name.ends_with(".so")
            {
                let src = ent.path();
                let dest = src.to_string_lossy().to_string();
                add_file(&mut entries, &dest, &src);
                lenient.push(src);
            }
        }
    }

    for bin in &elf_files {
        for lib in ldd(bin, false)? {
            let dest = lib.to_string_lossy().to_string();
            add_file(&mut entries, &dest, &lib);
        }
    }
    for bin in &lenient {
        for lib in ldd(bin, true)? {
            let dest = lib.to_string_lossy().to_string();
            add_file(&mut entries, &dest, &lib);
        }
    }

    entries.insert(
        PathBuf::from("/etc/passwd"),
        Entry::Bytes(
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                .to_vec(),
            0o644,
        ),
    );
    entries.insert(
        PathBuf::from("/etc/group"),
        Entry::Bytes(b"root:x:0:\nnogroup:x:65534:\n".to_vec(), 0o644),
    );
    for (dir, mode) in [
        ("/tmp", 0o1777),
        ("/data", 0o755),
        ("/run", 0o755),
        ("/root", 0o700),
        ("/proc", 0o555),
        ("/sys", 0o555),
        ("/dev", 0o755),
        ("/etc", 0o755),
    ] {
        entries.insert(PathBuf::from(dir), Entry::Dir(mode));
    }

    // Every parent directory gets an explicit entry so the tar is self-contained.
    let parents: BTreeSet<PathBuf> = entries
        .keys()
        .flat_map(|p| {
            p.ancestors()
                .skip(1)
                .map(Path::to_path_buf)
                .collect::<Vec<_>>()
        })
        .filter(|p| p != Path::new("/") && !p.as_os_str().is_empty())
        .collect();
    for p in parents {
        entries.entry(p).or_insert(Entry::Dir(0o755));
    }

    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    for (path, entry) in &entries {
        let rel = path.strip_prefix("/").unwrap_or(path);
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let res = match entry {
            Entry::Dir(mode) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                builder.append_data(&mut header, rel, std::io::empty())
            }
            Entry::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, rel, target)
            }
            Entry::Bytes(data, mode) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, rel, data.as_slice())
            }
            Entry::File { src, mode } => {
                // Follow symlinks on the host: the image gets a regular file at this path.
                let data = std::fs::read(src)
                    .map_err(|e| DockerError::io(format!("read {}", src.display()), e))?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, rel, data.as_slice())
            }
        };
        res.map_err(|e| DockerError::io(format!("add {} to rootfs tar", path.display()), e))?;
    }
    let out = builder
        .into_inner()
        .map_err(|e| DockerError::io("finish rootfs tar", e))?;
    debug!(
        entries = entries.len(),
        bytes = out.len(),
        "rootfs tar assembled"
    );
    Ok(out)
}

/// Adds the host file `src` as an executable regular file at `dest` in the image.
fn add_file(entries: &mut BTreeMap<PathBuf, Entry>, dest: &str, src: &Path) {
    entries.insert(
        PathBuf::from(dest),
        Entry::File {
            src: src.to_path_buf(),
            mode: 0o755,
        },
    );
}

/// Adds busybox (and its applet links), iptables, `ip`, `tc`, libfaketime and GNU
/// `date` to the
/// root filesystem; each ELF file goes to `elf_files` for `ldd`.
fn add_tools(
    entries: &mut BTreeMap<PathBuf, Entry>,
    elf_files: &mut Vec<PathBuf>,
    tools: &HostTools,
) {
    add_file(entries, "/bin/busybox", &tools.busybox);
    elf_files.push(tools.busybox.clone());
    let applets = busybox_applets(&tools.busybox);
    for applet in BUSYBOX_APPLETS {
        if applets.contains(*applet) {
            entries.insert(
                PathBuf::from(format!("/bin/{applet}")),
                Entry::Symlink("busybox".into()),
            );
        }
    }

    add_file(entries, "/usr/sbin/xtables-legacy-multi", &tools.xtables);
    elf_files.push(tools.xtables.clone());
    for name in [
        "iptables",
        "iptables-save",
        "iptables-restore",
        "iptables-legacy",
        "iptables-legacy-save",
        "iptables-legacy-restore",
    ] {
        entries.insert(
            PathBuf::from(format!("/usr/sbin/{name}")),
            Entry::Symlink("xtables-legacy-multi".into()),
        );
    }
    add_file(entries, "/usr/sbin/ip", &tools.ip);
    elf_files.push(tools.ip.clone());
    add_file(entries, "/usr/sbin/tc", &tools.tc);
    elf_files.push(tools.tc.clone());
    add_file(
        entries,
        crate::clock::FAKETIME_LIB_IN_IMAGE,
        &tools.faketime,
    );
    elf_files.push(tools.faketime.clone());
    add_file(entries, crate::clock::DYNAMIC_DATE, &tools.date);
    elf_files.push(tools.date.clone());
}

/// The applets the host busybox provides (`busybox --list`); empty if it cannot be run.
fn busybox_applets(busybox: &Path) -> BTreeSet<String> {
    Command::new(busybox)
        .arg("--list")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The shared libraries (and dynamic loader) `ldd` names for `binary`.
///
/// Static binaries yield nothing. An unresolved library is an error unless `lenient`.
pub fn ldd(binary: &Path, lenient: bool) -> Result<Vec<PathBuf>, DockerError> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| DockerError::io("run `ldd` (package libc-bin)", e))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    parse_ldd(binary, &text, lenient)
}

/// Parses `ldd` output; split out so it is unit-testable without running `ldd`.
pub fn parse_ldd(binary: &Path, text: &str, lenient: bool) -> Result<Vec<PathBuf>, DockerError> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.contains("not a dynamic executable") || line.contains("statically linked") {
            return Ok(Vec::new());
        }
        if let Some((name, rest)) = line.split_once("=>") {
            let rest = rest.trim();
            if rest.starts_with("not found") {
                if lenient {
                    continue;
                }
                return Err(DockerError::MissingLibrary {
                    binary: binary.to_path_buf(),
                    library: name.trim().to_string(),
                });
            }
            if let Some(path) = rest.split_whitespace().next() {
                if path.starts_with('/') {
                    libs.push(PathBuf::from(path));
                }
            }
        } else if line.starts_with('/') {
            if let Some(path) = line.split_whitespace().next() {
                libs.push(PathBuf::from(path));
            }
        }
    }
    Ok(libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ldd_output() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n";
        let libs = parse_ldd(Path::new("x"), text, false).expect("parse");
        assert_eq!(
            libs,
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
        assert!(
            parse_ldd(Path::new("x"), "\tnot a dynamic executable\n", false)
                .expect("static")
                .is_empty()
        );
        let err = parse_ldd(Path::new("x"), "\tlibfoo.so.1 => not found\n", false)
            .expect_err("missing lib");
        assert!(err.to_string().contains("libfoo.so.1"));
        assert!(
            parse_ldd(Path::new("x"), "\tlibfoo.so.1 => not found\n", true)
                .expect("lenient")
                .is_empty()
        );
    }

    #[test]
    fn missing_tools_message_names_packages() {
        let err = DockerError::MissingHostTools {
            missing: vec!["busybox (package busybox-static)".into()],
        };
        let msg = err.to_string();
        assert!(msg.contains("busybox-static iptables iproute2"), "{msg}");
    }
}
