//! The layer rule of docs/architecture.md, read from the source: every `crate::` path outside
//! test modules names a module of the same layer or a lower one, no two files import each other
//! through a circle, and no production file passes 400 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers from the bottom up; `main.rs` and `lib.rs` stand above them all.
const LAYERS: [&str; 6] = [
    "kernel", "config", "adapters", "report", "daemon", "commands",
];
const MAX_LINES: usize = 400;

struct Source {
    /// The module path, e.g. `adapters::probe` (`""` for lib.rs).
    module: String,
    /// The file, relative to the crate root.
    file: String,
    /// The lines before the first `#[cfg(test)]`.
    production: Vec<String>,
}

fn rank(module: &str) -> usize {
    let top = module.split("::").next().unwrap_or("");
    LAYERS
        .iter()
        .position(|l| *l == top)
        .unwrap_or(LAYERS.len())
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect(&root.join("src"), &mut files);
    files
        .into_iter()
        .filter(|f| !f.ends_with("main.rs"))
        .map(|path| {
            let rel = path.strip_prefix(root.join("src")).unwrap();
            let mut parts: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                parts.pop();
            }
            let text = fs::read_to_string(&path).unwrap();
            let production = text
                .lines()
                .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
                .map(str::to_string)
                .collect();
            Source {
                module: parts.join("::"),
                file: format!("src/{}", rel.display()),
                production,
            }
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every module path a line names with `crate::`, grouped imports spelled out.
fn crate_paths(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let tail = &rest[at + "crate::".len()..];
        let path: String = tail
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let path = path.trim_end_matches(':').to_string();
        let after = tail[path.len()..].trim_start_matches(':');
        if let Some(group) = after.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let item = item.split(" as ").next().unwrap_or(item);
                found.push(if path.is_empty() {
                    item.to_string()
                } else {
                    format!("{path}::{item}")
                });
            }
        } else {
            found.push(path);
        }
        rest = tail;
    }
    found
}

/// The file that a path lands in: the longest known module that prefixes it.
fn owner<'a>(path: &str, modules: &'a BTreeSet<String>) -> Option<&'a String> {
    let segments: Vec<&str> = path.split("::").collect();
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find_map(|candidate| modules.get(&candidate))
}

fn edges() -> (Vec<Source>, BTreeMap<String, BTreeSet<String>>) {
    let sources = sources();
    let modules: BTreeSet<String> = sources.iter().map(|s| s.module.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &sources {
        let targets = graph.entry(s.module.clone()).or_default();
        for line in &s.production {
            for path in crate_paths(line) {
                if let Some(target) = owner(&path, &modules) {
                    // A module's own children (its `mod` lines) are not imports.
                    if *target != s.module && !target.is_empty() {
                        targets.insert(target.clone());
                    }
                }
            }
        }
    }
    (sources, graph)
}

#[test]
fn no_layer_imports_a_higher_one() {
    let (sources, graph) = edges();
    let mut wrong = Vec::new();
    for s in &sources {
        for target in &graph[&s.module] {
            if rank(target) > rank(&s.module) {
                wrong.push(format!(
                    "{} ({}) imports {target} ({})",
                    s.file,
                    LAYERS.get(rank(&s.module)).unwrap_or(&"top"),
                    LAYERS.get(rank(target)).unwrap_or(&"top")
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layer order {}:\n{}",
        LAYERS.join(" < "),
        wrong.join("\n")
    );
}

#[test]
fn no_import_circle() {
    let (_, graph) = edges();
    // Tarjan's strongly connected components: any with two or more files is a circle.
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        circles: Vec<Vec<&'g str>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.circles.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        circles: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    let circles: Vec<String> = walk.circles.iter().map(|c| c.join(" <-> ")).collect();
    assert!(
        circles.is_empty(),
        "modules that import each other:\n{}",
        circles.join("\n")
    );
}

#[test]
fn no_production_file_passes_400_lines() {
    let long: Vec<String> = sources()
        .iter()
        .filter(|s| s.production.len() > MAX_LINES)
        .map(|s| format!("{} ({} lines)", s.file, s.production.len()))
        .collect();
    assert!(
        long.is_empty(),
        "files doing two jobs (over {MAX_LINES} lines before their tests):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_reader_sees_grouped_and_nested_paths() {
    assert_eq!(
        crate_paths("use crate::{kernel::policy, config::Config}; // crate::x"),
        ["kernel::policy", "config::Config"]
    );
    assert_eq!(
        crate_paths("let x = crate::adapters::probe::probe(&a);"),
        ["adapters::probe::probe"]
    );
    let modules: BTreeSet<String> = ["kernel", "kernel::policy"].map(String::from).into();
    assert_eq!(
        owner("kernel::policy::Policy", &modules).map(String::as_str),
        Some("kernel::policy")
    );
}
