//! The layer rule of docs/architecture.md, read from a source tree as the compiler reads it.
//!
//! Every file under `<root>/src` (but `main.rs`) is parsed with `syn`; its module path comes from
//! its place (`src/adapters/http/probe.rs` is `adapters::http::probe`). The kernel's crate, under
//! `<root>/crates/kernel/src`, is read as the `kernel` layer (`crates/kernel/src/policy/mod.rs` is
//! `kernel::policy`; its `crate::` and the `failover_kernel::` of the others lead there), and its
//! manifest must list no I/O crate among its dependencies. Every `use` tree (groups, nesting,
//! `self`, `super`, `crate`, renames such as `use crate as fh`), every path in an expression, a
//! type, a pattern or an attribute, every macro's path and the paths in its tokens are resolved to
//! a module of the crate or to an outside crate. Every function and method is measured, from its
//! `fn` line to its closing brace, with what its body holds (closures, inner items). Only items
//! under `#[cfg(test)]` are passed over, wherever they stand.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::spanned::Spanned;
use syn::visit::{self, Visit};

/// The layers from the bottom up; `main.rs`, `lib.rs` and anything else stand above them all.
pub const LAYERS: [&str; 6] = [
    "kernel", "config", "adapters", "report", "daemon", "commands",
];
/// The most lines a production function may take, its signature and closing brace included.
pub const MAX_FN_LINES: usize = 80;
/// Where the kernel's crate lives, from the root.
pub const KERNEL_CRATE: &str = "crates/kernel";
/// The name the root crate's files may call the kernel's crate by (`failover_kernel::policy`).
const KERNEL_LIB: &str = "failover_kernel";
/// Crates the kernel may not depend on: I/O, the async runtime, the network, JSON, logging.
/// A crate of the same family (`tokio-util`, `hyper-util`, `rustls-pki-types`) counts too.
pub const KERNEL_NEVER_DEPENDS_ON: [&str; 8] = [
    "tokio",
    "hyper",
    "rustls",
    "reqwest",
    "axum",
    "serde_json",
    "tracing",
    "log",
];

/// What a finding breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// A path into a higher layer.
    Upward,
    /// Files that import each other through a circle.
    Circle,
    /// A production function over [`MAX_FN_LINES`] lines.
    Function,
    /// The kernel reads a clock.
    Clock,
    /// The kernel does I/O.
    Io,
    /// The kernel or an adapter logs.
    Log,
    /// The kernel's crate depends on an I/O crate.
    Dependency,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Upward => "upward",
            Rule::Circle => "circle",
            Rule::Function => "function",
            Rule::Clock => "clock",
            Rule::Io => "io",
            Rule::Log => "log",
            Rule::Dependency => "dependency",
        }
    }
}

/// One violation, at a file's line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub rule: Rule,
    /// Relative to the root, e.g. `src/adapters/http/probe.rs`.
    pub file: String,
    pub line: usize,
    pub what: String,
}

impl Finding {
    /// `rule file:line`, as a fixture's `expected` file lists it.
    pub fn key(&self) -> String {
        format!("{} {}:{}", self.rule.name(), self.file, self.line)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.what)
    }
}

/// Where a path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A path from the crate root (`[]` is the root itself).
    Crate(Vec<String>),
    /// Anything else: an outside crate (`std`, `tokio`, `tracing`...), a local name.
    Outside(Vec<String>),
}

impl Target {
    fn into_path(self) -> Vec<String> {
        match self {
            Target::Crate(p) | Target::Outside(p) => p,
        }
    }

    fn join(&self, rest: &[String]) -> Target {
        let extend = |base: &Vec<String>| base.iter().chain(rest).cloned().collect();
        match self {
            Target::Crate(p) => Target::Crate(extend(p)),
            Target::Outside(p) => Target::Outside(extend(p)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A path in a `use` tree.
    Use,
    /// A path in an expression, a type, a pattern or a macro's tokens.
    Path,
    Macro,
    /// A method call by name (`.elapsed()`).
    Method,
}

#[derive(Debug, Clone)]
struct Ref {
    target: Target,
    /// The path as written.
    written: Vec<String>,
    kind: Kind,
    line: usize,
}

/// A module's or a block's names: `use` bindings and child modules.
struct Scope {
    module: Vec<String>,
    /// A module ends the lookup: an inner module does not see its parent's names.
    is_module: bool,
    names: HashMap<String, Target>,
}

/// One file, read.
struct Source {
    module: Vec<String>,
    /// The items the file defines at its top, by name.
    defines: BTreeSet<String>,
    /// Its top-level names from `use` and `mod`, re-exports included.
    names: HashMap<String, Target>,
    /// The modules it takes every name of (`use x::*`).
    globs: Vec<Vec<String>>,
    /// Its child modules in files of their own declared under `#[cfg(test)]`: test code.
    test_children: Vec<Vec<String>>,
    file: String,
    refs: Vec<Ref>,
    /// Its production functions: name, first and last line.
    functions: Vec<(String, usize, usize)>,
}

fn line(span: Span) -> usize {
    span.start().line
}

/// `#[cfg(test)]` or `#[cfg(all(test, ...))]`.
fn is_test_cfg(attrs: &[syn::Attribute]) -> bool {
    fn test_in(meta: &syn::Meta) -> bool {
        match meta {
            syn::Meta::Path(p) => p.is_ident("test"),
            syn::Meta::List(list) if list.path.is_ident("all") => list
                .parse_args_with(
                    syn::punctuated::Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated,
                )
                .is_ok_and(|nested| nested.iter().any(test_in)),
            _ => false,
        }
    }
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.parse_args::<syn::Meta>().is_ok_and(|m| test_in(&m)))
}

/// The leaves of a `use` tree: the full path, the name it binds (none for `_` or a glob),
/// and the line of its last segment.
fn use_leaves(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>, usize)>,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_leaves(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            if name == "self" {
                out.push((prefix.clone(), prefix.last().cloned(), line(n.ident.span())));
            } else {
                let mut path = prefix.clone();
                path.push(name.clone());
                out.push((path, Some(name), line(n.ident.span())));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            let name = r.ident.to_string();
            if name != "self" {
                path.push(name);
            }
            let bound = Some(r.rename.to_string()).filter(|n| n != "_");
            out.push((path, bound, line(r.ident.span())));
        }
        syn::UseTree::Glob(g) => out.push((prefix.clone(), None, line(g.star_token.span))),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_leaves(t, prefix, out);
            }
        }
    }
}

struct Reader {
    /// The module the file's crate stands for: `[]` for the root crate, `[kernel]` for the
    /// kernel's crate.
    krate: Vec<String>,
    scopes: Vec<Scope>,
    refs: Vec<Ref>,
    functions: Vec<(String, usize, usize)>,
    /// How many functions the reader is inside: an inner one counts with its outer one.
    in_function: usize,
}

impl Reader {
    fn module(&self) -> &[String] {
        self.scopes
            .iter()
            .rev()
            .find(|s| s.is_module)
            .map(|s| s.module.as_slice())
            .unwrap_or(&[])
    }

    fn resolve(&self, segs: &[String], leading_colon: bool) -> Option<Target> {
        let first = segs.first()?;
        if leading_colon {
            return Some(Target::Outside(segs.to_vec()));
        }
        let module = self.module();
        match first.as_str() {
            "crate" => Some(Target::Crate(self.krate.clone()).join(&segs[1..])),
            "self" => Some(Target::Crate(module.to_vec()).join(&segs[1..])),
            "super" => {
                let up = segs.iter().take_while(|s| *s == "super").count();
                let base = module.get(..module.len().checked_sub(up)?)?;
                Some(Target::Crate(base.to_vec()).join(&segs[up..]))
            }
            "Self" => None,
            name => {
                for scope in self.scopes.iter().rev() {
                    if let Some(t) = scope.names.get(name) {
                        return Some(t.join(&segs[1..]));
                    }
                    if scope.is_module {
                        break;
                    }
                }
                if name == KERNEL_LIB {
                    return Some(Target::Crate(vec!["kernel".into()]).join(&segs[1..]));
                }
                Some(Target::Outside(segs.to_vec()))
            }
        }
    }

    fn record(&mut self, segs: &[String], leading_colon: bool, kind: Kind, at: usize) {
        if let Some(target) = self.resolve(segs, leading_colon) {
            self.refs.push(Ref {
                target,
                written: segs.to_vec(),
                kind,
                line: at,
            });
        }
    }

    /// Binds the names of `items` (child modules, `use`s) in the innermost scope before the
    /// items are read, since a name may be used above its `use`.
    fn bind(&mut self, items: &[&syn::Item]) {
        let mut leaves = Vec::new();
        for item in items {
            match item {
                syn::Item::Mod(m) if !is_test_cfg(&m.attrs) => {
                    let mut path = self.module().to_vec();
                    path.push(m.ident.to_string());
                    if let Some(scope) = self.scopes.last_mut() {
                        scope.names.insert(m.ident.to_string(), Target::Crate(path));
                    }
                }
                syn::Item::Use(u) if !is_test_cfg(&u.attrs) => {
                    use_leaves(&u.tree, &mut Vec::new(), &mut leaves);
                }
                _ => {}
            }
        }
        // A `use` may lean on another (`use crate as fh; use fh::daemon;`), in any order.
        for _ in 0..4 {
            for (path, bound, _) in &leaves {
                let Some(name) = bound else { continue };
                let Some(target) = self.resolve(path, false) else {
                    continue;
                };
                if let Some(scope) = self.scopes.last_mut() {
                    scope.names.insert(name.clone(), target);
                }
            }
        }
    }

    /// Measures a function (unless it stands inside another), then reads its body.
    fn function(&mut self, sig: &syn::Signature, block: &syn::Block, read: impl FnOnce(&mut Self)) {
        if self.in_function == 0 {
            let first = line(sig.span());
            let last = block.brace_token.span.close().end().line;
            self.functions.push((sig.ident.to_string(), first, last));
        }
        self.in_function += 1;
        read(self);
        self.in_function -= 1;
    }

    /// The paths in a macro's tokens: `a::b::c`, `$crate::x`, `::std::fs`.
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => {
                    self.scan_tokens(g.stream());
                    i += 1;
                }
                TokenTree::Ident(_) | TokenTree::Punct(_) => {
                    let mut leading_colon = false;
                    let mut j = i;
                    if let TokenTree::Punct(p) = &trees[j] {
                        if p.as_char() == '$'
                            && matches!(trees.get(j + 1), Some(TokenTree::Ident(id)) if id == "crate")
                        {
                            j += 1;
                        } else if is_path_sep(&trees, j) {
                            leading_colon = true;
                            j += 2;
                        } else {
                            i += 1;
                            continue;
                        }
                    }
                    let mut segs = Vec::new();
                    let mut at = 0;
                    while let Some(TokenTree::Ident(id)) = trees.get(j) {
                        if segs.is_empty() {
                            at = line(id.span());
                        }
                        segs.push(id.to_string());
                        if is_path_sep(&trees, j + 1) {
                            j += 3;
                        } else {
                            j += 1;
                            break;
                        }
                    }
                    if segs.is_empty() {
                        i += 1;
                    } else {
                        self.record(&segs, leading_colon, Kind::Path, at);
                        i = j;
                    }
                }
                TokenTree::Literal(_) => i += 1,
            }
        }
    }
}

fn item_attrs(i: &syn::Item) -> &[syn::Attribute] {
    match i {
        syn::Item::Const(x) => &x.attrs,
        syn::Item::Enum(x) => &x.attrs,
        syn::Item::ExternCrate(x) => &x.attrs,
        syn::Item::Fn(x) => &x.attrs,
        syn::Item::ForeignMod(x) => &x.attrs,
        syn::Item::Impl(x) => &x.attrs,
        syn::Item::Macro(x) => &x.attrs,
        syn::Item::Mod(x) => &x.attrs,
        syn::Item::Static(x) => &x.attrs,
        syn::Item::Struct(x) => &x.attrs,
        syn::Item::Trait(x) => &x.attrs,
        syn::Item::TraitAlias(x) => &x.attrs,
        syn::Item::Type(x) => &x.attrs,
        syn::Item::Union(x) => &x.attrs,
        syn::Item::Use(x) => &x.attrs,
        _ => &[],
    }
}

/// The name an item defines in its module (a `mod x;` is a file of its own: not here).
fn item_name(i: &syn::Item) -> Option<String> {
    let ident = match i {
        syn::Item::Const(x) => &x.ident,
        syn::Item::Enum(x) => &x.ident,
        syn::Item::Fn(x) => &x.sig.ident,
        syn::Item::Macro(x) => x.ident.as_ref()?,
        syn::Item::Mod(x) if x.content.is_some() => &x.ident,
        syn::Item::Static(x) => &x.ident,
        syn::Item::Struct(x) => &x.ident,
        syn::Item::Trait(x) => &x.ident,
        syn::Item::TraitAlias(x) => &x.ident,
        syn::Item::Type(x) => &x.ident,
        syn::Item::Union(x) => &x.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

fn is_path_sep(trees: &[TokenTree], at: usize) -> bool {
    matches!(
        (trees.get(at), trees.get(at + 1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && b.as_char() == ':' && a.spacing() == proc_macro2::Spacing::Joint
    )
}

impl<'ast> Visit<'ast> for Reader {
    fn visit_item(&mut self, i: &'ast syn::Item) {
        if !is_test_cfg(item_attrs(i)) {
            visit::visit_item(self, i);
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.function(&f.sig, &f.block, |r| visit::visit_item_fn(r, f));
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.function(&f.sig, &f.block, |r| visit::visit_impl_item_fn(r, f));
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        match &f.default {
            Some(block) => self.function(&f.sig, block, |r| visit::visit_trait_item_fn(r, f)),
            None => visit::visit_trait_item_fn(self, f),
        }
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let Some((_, items)) = &m.content else {
            return;
        };
        let mut module = self.module().to_vec();
        module.push(m.ident.to_string());
        self.scopes.push(Scope {
            module,
            is_module: true,
            names: HashMap::new(),
        });
        self.bind(&items.iter().collect::<Vec<_>>());
        for item in items {
            self.visit_item(item);
        }
        self.scopes.pop();
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut leaves = Vec::new();
        use_leaves(&u.tree, &mut Vec::new(), &mut leaves);
        let leading_colon = u.leading_colon.is_some();
        for (path, _, at) in leaves {
            self.record(&path, leading_colon, Kind::Use, at);
        }
    }

    fn visit_block(&mut self, b: &'ast syn::Block) {
        self.scopes.push(Scope {
            module: self.module().to_vec(),
            is_module: false,
            names: HashMap::new(),
        });
        let items: Vec<&syn::Item> = b
            .stmts
            .iter()
            .filter_map(|s| match s {
                syn::Stmt::Item(i) => Some(i),
                _ => None,
            })
            .collect();
        self.bind(&items);
        visit::visit_block(self, b);
        self.scopes.pop();
    }

    fn visit_impl_item(&mut self, i: &'ast syn::ImplItem) {
        let attrs: &[syn::Attribute] = match i {
            syn::ImplItem::Const(x) => &x.attrs,
            syn::ImplItem::Fn(x) => &x.attrs,
            syn::ImplItem::Type(x) => &x.attrs,
            syn::ImplItem::Macro(x) => &x.attrs,
            _ => &[],
        };
        if !is_test_cfg(attrs) {
            visit::visit_impl_item(self, i);
        }
    }

    fn visit_trait_item(&mut self, i: &'ast syn::TraitItem) {
        let attrs: &[syn::Attribute] = match i {
            syn::TraitItem::Const(x) => &x.attrs,
            syn::TraitItem::Fn(x) => &x.attrs,
            syn::TraitItem::Type(x) => &x.attrs,
            syn::TraitItem::Macro(x) => &x.attrs,
            _ => &[],
        };
        if !is_test_cfg(attrs) {
            visit::visit_trait_item(self, i);
        }
    }

    fn visit_local(&mut self, l: &'ast syn::Local) {
        if !is_test_cfg(&l.attrs) {
            visit::visit_local(self, l);
        }
    }

    fn visit_field(&mut self, f: &'ast syn::Field) {
        if !is_test_cfg(&f.attrs) {
            visit::visit_field(self, f);
        }
    }

    fn visit_variant(&mut self, v: &'ast syn::Variant) {
        if !is_test_cfg(&v.attrs) {
            visit::visit_variant(self, v);
        }
    }

    fn visit_arm(&mut self, a: &'ast syn::Arm) {
        if !is_test_cfg(&a.attrs) {
            visit::visit_arm(self, a);
        }
    }

    /// An attribute's name is not a path of the crate (`#[error(..)]` is thiserror's, whatever
    /// `error` names here); the paths in its arguments are.
    fn visit_attribute(&mut self, a: &'ast syn::Attribute) {
        if let syn::Meta::List(list) = &a.meta {
            self.scan_tokens(list.tokens.clone());
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(first) = p.segments.first() {
            self.record(
                &segs,
                p.leading_colon.is_some(),
                Kind::Path,
                line(first.ident.span()),
            );
        }
        visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        let segs: Vec<String> = m
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        if let Some(first) = m.path.segments.first() {
            self.record(
                &segs,
                m.path.leading_colon.is_some(),
                Kind::Macro,
                line(first.ident.span()),
            );
        }
        for s in &m.path.segments {
            self.visit_path_arguments(&s.arguments);
        }
        self.scan_tokens(m.tokens.clone());
    }

    fn visit_expr_method_call(&mut self, c: &'ast syn::ExprMethodCall) {
        self.refs.push(Ref {
            target: Target::Outside(vec![c.method.to_string()]),
            written: vec![c.method.to_string()],
            kind: Kind::Method,
            line: line(c.method.span()),
        });
        visit::visit_expr_method_call(self, c);
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The root crate's files and the kernel crate's, read.
fn read(root: &Path) -> Vec<Source> {
    let mut sources = read_crate(root, "src", &[]);
    sources.extend(read_crate(
        root,
        &format!("{KERNEL_CRATE}/src"),
        &["kernel"],
    ));
    sources.drop_test_files()
}

/// The files of one crate, under `root/dir`, as the modules below `krate` (the module the
/// crate stands for in the tree).
fn read_crate(root: &Path, dir: &str, krate: &[&str]) -> Vec<Source> {
    let src = root.join(dir);
    let krate: Vec<String> = krate.iter().map(ToString::to_string).collect();
    let mut files = Vec::new();
    collect(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|f| f.strip_prefix(&src).ok() != Some(Path::new("main.rs")))
        .map(|path| {
            let rel = path.strip_prefix(&src).unwrap_or(&path);
            let mut module: Vec<String> = krate.clone();
            module.extend(
                rel.with_extension("")
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned()),
            );
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let file = format!("{dir}/{}", rel.display());
            let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
            let ast = syn::parse_file(&text)
                .unwrap_or_else(|e| panic!("{file}:{}: does not parse: {e}", line(e.span())));
            let mut reader = Reader {
                krate: krate.clone(),
                scopes: vec![Scope {
                    module: module.clone(),
                    is_module: true,
                    names: HashMap::new(),
                }],
                refs: Vec::new(),
                functions: Vec::new(),
                in_function: 0,
            };
            let mut defines = BTreeSet::new();
            let mut globs = Vec::new();
            let test_children = ast
                .items
                .iter()
                .filter_map(|i| match i {
                    syn::Item::Mod(m) if m.content.is_none() && is_test_cfg(&m.attrs) => {
                        let mut child = module.clone();
                        child.push(m.ident.to_string());
                        Some(child)
                    }
                    _ => None,
                })
                .collect();
            if !is_test_cfg(&ast.attrs) {
                reader.bind(&ast.items.iter().collect::<Vec<_>>());
                for item in &ast.items {
                    reader.visit_item(item);
                }
                for item in ast.items.iter().filter(|i| !is_test_cfg(item_attrs(i))) {
                    if let Some(name) = item_name(item) {
                        defines.insert(name);
                    }
                    if let syn::Item::Use(u) = item {
                        let mut leaves = Vec::new();
                        use_leaves(&u.tree, &mut Vec::new(), &mut leaves);
                        for (path, bound, _) in leaves {
                            if bound.is_none()
                                && let Some(Target::Crate(m)) = reader.resolve(&path, false)
                            {
                                globs.push(m);
                            }
                        }
                    }
                }
            }
            let names = reader.scopes.swap_remove(0).names;
            Source {
                module,
                defines,
                names,
                globs,
                test_children,
                file,
                refs: reader.refs,
                functions: reader.functions,
            }
        })
        .collect()
}

trait DropTestFiles {
    fn drop_test_files(self) -> Self;
}

impl DropTestFiles for Vec<Source> {
    /// Drops the files of modules declared under `#[cfg(test)]` (`mod test_http;`), and the
    /// files below them: they are test code, like a test module written inline.
    fn drop_test_files(self) -> Self {
        let tests: Vec<Vec<String>> = self
            .iter()
            .flat_map(|s| s.test_children.iter().cloned())
            .collect();
        self.into_iter()
            .filter(|s| !tests.iter().any(|t| s.module.starts_with(t)))
            .collect()
    }
}

fn rank(module: &[String]) -> usize {
    let top = module.first().map(String::as_str).unwrap_or("");
    LAYERS
        .iter()
        .position(|l| *l == top)
        .unwrap_or(LAYERS.len())
}

fn layer(module: &[String]) -> &'static str {
    LAYERS.get(rank(module)).copied().unwrap_or("top")
}

/// The file that a crate path lands in, through the re-exports on its way (`crate::config::
/// Config` lands in `config::settings` when `config/mod.rs` says `pub use settings::Config`).
fn owner(
    path: &[String],
    files: &BTreeMap<Vec<String>, &Source>,
    hops: usize,
) -> Option<Vec<String>> {
    let mut module: Vec<String> = Vec::new();
    for (i, seg) in path.iter().enumerate() {
        let mut child = module.clone();
        child.push(seg.clone());
        // A folder without its `mod.rs` (in a fixture) is passed through.
        let Some(here) = files.get(&module).filter(|_| !files.contains_key(&child)) else {
            module = child;
            continue;
        };
        if here.defines.contains(seg) || hops > 8 {
            return Some(module);
        }
        let rest = &path[i + 1..];
        if let Some(Target::Crate(to)) = here.names.get(seg) {
            return owner(
                &Target::Crate(to.clone()).join(rest).into_path(),
                files,
                hops + 1,
            );
        }
        for glob in &here.globs {
            let from = files.get(glob);
            if from.is_some_and(|f| f.defines.contains(seg) || f.names.contains_key(seg)) {
                let mut via = glob.clone();
                via.extend(path[i..].iter().cloned());
                return owner(&via, files, hops + 1);
            }
        }
        return Some(module);
    }
    files.contains_key(&module).then_some(module)
}

fn starts(path: &[String], prefix: &[&str]) -> bool {
    path.len() >= prefix.len() && path.iter().zip(prefix).all(|(a, b)| a == b)
}

const LOG_MACROS: [&str; 11] = [
    "trace",
    "debug",
    "info",
    "warn",
    "error",
    "event",
    "span",
    "trace_span",
    "debug_span",
    "info_span",
    "warn_span",
];

/// A logging macro or its import. A value or type path named like one through a `use` of it
/// (a variable `error` beside `use tracing::error`) is another namespace: only a path spelled
/// from `tracing` or `log` counts there.
fn logs(r: &Ref, p: &[String]) -> bool {
    let from_log = |p: &[String]| starts(p, &["tracing"]) || starts(p, &["log"]);
    match r.kind {
        Kind::Use => from_log(p),
        Kind::Macro => from_log(p) || (p.len() == 1 && LOG_MACROS.contains(&p[0].as_str())),
        Kind::Path => from_log(&r.written),
        Kind::Method => false,
    }
}

/// What the kernel may not do with an outside path.
fn kernel_never(r: &Ref) -> Option<(Rule, String)> {
    let Target::Outside(p) = &r.target else {
        return None;
    };
    let shown = p.join("::");
    let tail: Vec<&str> = p.iter().rev().take(2).rev().map(String::as_str).collect();
    if r.kind == Kind::Method {
        return (shown == "elapsed").then(|| {
            (
                Rule::Clock,
                "reads the clock with `.elapsed()`: hand `now` in".into(),
            )
        });
    }
    if matches!(
        tail.as_slice(),
        ["Instant" | "SystemTime" | "Utc" | "Local", "now"]
    ) {
        return Some((
            Rule::Clock,
            format!("reads the clock with `{shown}`: hand `now` in"),
        ));
    }
    if logs(r, p) {
        return Some((Rule::Log, format!("logs with `{shown}`")));
    }
    let io = ["fs", "net", "io", "process", "env", "os", "thread"]
        .iter()
        .any(|m| starts(p, &["std", m]) || starts(p, &["core", m]))
        || (starts(p, &["tokio"])
            && !matches!(p.as_slice(), [_, t, n] if t == "time" && (n == "Instant" || n == "Duration")))
        || (r.kind == Kind::Macro
            && p.len() == 1
            && ["println", "print", "eprintln", "eprint", "dbg"].contains(&p[0].as_str()));
    io.then(|| (Rule::Io, format!("does I/O with `{shown}`")))
}

/// What an adapter may not do: tell anybody what happened (it returns it; the caller tells).
fn adapter_never(r: &Ref) -> Option<(Rule, String)> {
    let Target::Outside(p) = &r.target else {
        return None;
    };
    logs(r, p).then(|| {
        (
            Rule::Log,
            format!(
                "logs with `{}`: return what happened, the caller tells it",
                p.join("::")
            ),
        )
    })
}

/// The kernel crate's dependencies that it may never have ([`KERNEL_NEVER_DEPENDS_ON`]): its
/// `[dependencies]` and every `[target.'...'.dependencies]`, by name or by `package = ".."`.
/// Dev- and build-dependencies are not built into the kernel and do not count. No manifest,
/// no finding: the tests of this tree check that it has one.
fn kernel_manifest(root: &Path) -> Vec<Finding> {
    let file = format!("{KERNEL_CRATE}/Cargo.toml");
    let Ok(text) = fs::read_to_string(root.join(&file)) else {
        return Vec::new();
    };
    let finding = |line, what| Finding {
        rule: Rule::Dependency,
        file: file.clone(),
        line,
        what,
    };
    let manifest: toml::Table = match text.parse() {
        Ok(m) => m,
        Err(e) => return vec![finding(1, format!("does not parse: {e}"))],
    };
    let mut tables: Vec<&toml::Table> = Vec::new();
    if let Some(deps) = manifest.get("dependencies").and_then(toml::Value::as_table) {
        tables.push(deps);
    }
    for target in (manifest.get("target").and_then(toml::Value::as_table))
        .into_iter()
        .flat_map(|t| t.values())
    {
        if let Some(deps) = target.get("dependencies").and_then(toml::Value::as_table) {
            tables.push(deps);
        }
    }
    let mut found = Vec::new();
    for (key, spec) in tables.into_iter().flatten() {
        let name = spec
            .get("package")
            .and_then(toml::Value::as_str)
            .unwrap_or(key);
        let never = KERNEL_NEVER_DEPENDS_ON
            .iter()
            .find(|n| name == **n || name.starts_with(&format!("{n}-")));
        if let Some(never) = never {
            found.push(finding(
                line_of_dependency(&text, key),
                format!(
                    "the kernel depends on `{name}` ({never}): it does no I/O, its caller does"
                ),
            ));
        }
    }
    found
}

/// The line of the manifest that names dependency `key` (`key = ..`, `key.workspace = ..`,
/// `[dependencies.key]`); 1 if none does.
fn line_of_dependency(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start().trim_start_matches('"');
            let named = |rest: &str| {
                let rest = rest.trim_start_matches('"').trim_start();
                rest.starts_with('=') || rest.starts_with('.')
            };
            l.strip_prefix(key).is_some_and(named)
                || (l.starts_with('[') && l.trim_end().ends_with(&format!(".{key}]")))
        })
        .map_or(1, |i| i + 1)
}

/// Every violation of the tree at `root` (a crate: `root/src/...`), sorted.
pub fn check(root: &Path) -> Vec<Finding> {
    let sources = read(root);
    let files: BTreeMap<Vec<String>, &Source> =
        sources.iter().map(|s| (s.module.clone(), s)).collect();
    let mut findings = Vec::new();
    // The import graph between files, with the first line of each edge.
    let mut graph: BTreeMap<Vec<String>, BTreeMap<Vec<String>, usize>> = BTreeMap::new();
    for s in &sources {
        let edges = graph.entry(s.module.clone()).or_default();
        for r in &s.refs {
            let mut find = |rule, what: String| {
                findings.push(Finding {
                    rule,
                    file: s.file.clone(),
                    line: r.line,
                    what,
                })
            };
            match &r.target {
                Target::Crate(path) => {
                    if !path.is_empty() && rank(path) > rank(&s.module) {
                        find(
                            Rule::Upward,
                            format!(
                                "{} ({}) uses crate::{} ({})",
                                s.module.join("::"),
                                layer(&s.module),
                                path.join("::"),
                                layer(path)
                            ),
                        );
                    }
                    // A module's own files below it (its `mod` lines, its re-exports) are
                    // not imports.
                    if let Some(target) = owner(path, &files, 0)
                        && !target.starts_with(&s.module)
                        && !target.is_empty()
                    {
                        edges.entry(target).or_insert(r.line);
                    }
                }
                Target::Outside(_) => {
                    let never = match s.module.first().map(String::as_str) {
                        Some("kernel") => kernel_never(r),
                        Some("adapters") => adapter_never(r),
                        _ => None,
                    };
                    if let Some((rule, what)) = never {
                        find(
                            rule,
                            format!("{} ({}) {what}", s.module.join("::"), layer(&s.module)),
                        );
                    }
                }
            }
        }
        for (name, first, last) in &s.functions {
            let lines = last + 1 - first;
            if lines > MAX_FN_LINES {
                findings.push(Finding {
                    rule: Rule::Function,
                    file: s.file.clone(),
                    line: *first,
                    what: format!("{name} ({lines} lines)"),
                });
            }
        }
    }
    for circle in circles(&graph) {
        let names: Vec<String> = circle.iter().map(|m| m.join("::")).collect();
        for m in &circle {
            let Some(at) = graph[m]
                .iter()
                .find(|(t, _)| circle.contains(t))
                .map(|(_, l)| *l)
            else {
                continue;
            };
            findings.push(Finding {
                rule: Rule::Circle,
                file: files.get(m).map_or_else(String::new, |f| f.file.clone()),
                line: at,
                what: format!("imports through a circle: {}", names.join(" <-> ")),
            });
        }
    }
    findings.extend(kernel_manifest(root));
    findings.sort();
    findings.dedup_by(|a, b| a.key() == b.key());
    findings
}

/// Tarjan's strongly connected components: any with two or more files is a circle.
fn circles(graph: &BTreeMap<Vec<String>, BTreeMap<Vec<String>, usize>>) -> Vec<Vec<Vec<String>>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<Vec<String>, BTreeMap<Vec<String>, usize>>,
        index: BTreeMap<&'g Vec<String>, usize>,
        low: BTreeMap<&'g Vec<String>, usize>,
        stack: Vec<&'g Vec<String>>,
        on_stack: BTreeSet<&'g Vec<String>>,
        circles: Vec<Vec<Vec<String>>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g Vec<String>) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            let graph = self.graph;
            for w in graph.get(v).into_iter().flat_map(|e| e.keys()) {
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
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.circles.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        circles: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.circles
}
