"""`symnet generate`: write (or check) the numpy modules of catalog entries or of your own
declarations: activations, losses, regularisers and layers. A network gets no module: the
runtime composes it from its layers' modules, and `symnet generate` says so.

    symnet generate                       every catalog module into the checkout's generated/
    symnet generate --check               exit 1 and show the diff if generated/ is stale
    symnet generate NAME|FILE.py:NAME -o DIR   chosen modules into DIR
    symnet generate ... --target torch    PyTorch modules instead, into DIR/torch_modules/
                                          (jax: DIR/jax_modules/); see symnet.codegen.targets
"""

from __future__ import annotations

from pathlib import Path

from symnet.codegen.emit import Source, differences, files_for, write_files
from symnet.codegen.errors import CodegenError
from symnet.codegen.lower import REDUCTIONS
from symnet.codegen.targets import TARGET_FOLDERS, TARGETS, require_framework
from symnet.files import check_output
from symnet.templating import checkout_generated


def default_output() -> Path:
    """The generated/ folder of the source checkout symnet runs from."""
    found = checkout_generated()
    if found is None:
        raise CodegenError("", "symnet is not running from a source checkout, so there is no "
                           "generated/ folder to write; name one with -o DIR")
    return found


def catalog_sources() -> list[Source]:
    """Every module of the catalog: the activations, losses and regularisers, then the
    layers that are not an activation applied entry by entry (that is the activation's
    own module), then the fused training steps (generated/networks/). The catalog's
    networks have none: the runtime composes them from these."""
    from symnet.catalog import DECLARATIONS, LAYER_REGISTRY, REGISTRY, STEPS

    layers = {name: decl for name, decl in LAYER_REGISTRY.items()
              if decl.kind == "layer" and decl.activation is None}
    tensor_layers = DECLARATIONS.of_kind("tensor layer")
    return [Source(name, decl) for name, decl in {**REGISTRY, **layers, **tensor_layers,
                                                  **STEPS}.items()]


def composed_at_run_time(network) -> str:
    """Why a network gets no module, and which modules it is composed of."""
    parts = [f"layers {', '.join(dict.fromkeys(s.layer.name for s in network.stages))}"]
    parts += [f"{what} {decl.name}" for what, decl in (("loss", network.loss),
              ("regulariser", network.regularizer)) if decl is not None]
    return (f"{network.name}: a network gets no module of its own; the runtime composes it "
            f"from the generated modules of its {'; '.join(parts)}")


def _composed_at_run_time(decl) -> bool:
    """A network of matrix layers; one with a tensor-layer stage is one tensor layer in
    index notation (symnet.index.stages) and gets its module."""
    return decl.kind == "network" and getattr(decl, "tensor", None) is None


def sources(references) -> list[Source]:
    """The declarations named on the command line, or the whole catalog."""
    from symnet.loader import resolve_all, split_reference

    if not references:
        return catalog_sources()
    found = []
    for reference in references:
        path, _ = split_reference(reference)
        if reference.endswith(".py"):
            path = reference
        for decl in resolve_all(reference):
            # the file's name, not its path: the same bytes wherever generate runs from
            shown = f"{Path(path).name}:{decl.name}" if path else reference
            found.append(Source(shown, decl))
    return found


def module_files(named: list[Source], reduction: str, target: str = "numpy") \
        -> list[tuple[str, str]]:
    """Each source's (relative path, text) for the target: from symnet's cache when this
    exact declaration, reduction, target and symnet code made it before (symnet.cache), the
    others generated on one process per core and kept."""
    from symnet import cache
    from symnet.cli.parallel import kept_or_computed
    from symnet.codegen.emit import module_file
    from symnet.codegen.targets import target_module_file

    def compute(source):
        if target == "numpy":
            return module_file(source, reduction)
        return target_module_file(source, reduction, target)

    return kept_or_computed(
        named, lambda source: cache.kept_module_file(source, reduction, target),
        lambda source, module: cache.keep_module_file(source, reduction, module, target),
        compute)


def chosen_targets(args) -> list[str]:
    """The targets asked for with --target (their frameworks installed), else: every target
    for the whole catalog (the checkout's generated/ holds them all), numpy for named
    declarations."""
    if args.target:
        for target in args.target:
            require_framework(target)
        return list(dict.fromkeys(args.target))
    return list(TARGETS) if not args.names else ["numpy"]


#: kinds generated for numpy only: fused steps (BLAS in place, workspaces updated in place)
NUMPY_ONLY = ("step",)


def refuse_numpy_only(named: list[Source], targets: list[str]) -> None:
    """A declaration named with a target that cannot have it: one line naming both."""
    others = [t for t in targets if t != "numpy"]
    for source in named:
        if others and source.declaration.kind in NUMPY_ONLY:
            raise CodegenError(source.reference, f"a {source.declaration.kind} is generated for "
                               f"the numpy target only, not --target {others[0]}")


def target_files_for(named: list[Source], reduction: str, target: str) -> dict[str, str]:
    """Every file one target's generation writes, by path inside the output folder."""
    from symnet.codegen.targets import target_files

    if target == "numpy":
        return files_for(named, reduction, modules=module_files(named, reduction))
    named = [s for s in named if s.declaration.kind not in NUMPY_ONLY]
    if not named:
        return {}
    return target_files(named, module_files(named, reduction, target), target)


def strays(root: Path, files: dict[str, str], targets: list[str]) -> list[str]:
    """A note per .py file on disk in the targets' folders that no declaration generates
    (numpy's folder is the root without the other targets' folders)."""
    if not root.is_dir():
        return []
    others = {TARGET_FOLDERS[t] for t in TARGETS if t != "numpy"}
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if "__pycache__" in rel.parts or rel.as_posix() in files:
            continue
        top = rel.parts[0] if len(rel.parts) > 1 else ""
        target = next((t for t in TARGETS if t != "numpy" and TARGET_FOLDERS[t] == top),
                      "numpy" if top not in others else None)
        if target in targets:
            found.append(f"{rel.as_posix()}: on disk, but no declaration generates it "
                         f"(remove it)\n")
    return found


def cmd_generate(args) -> int:
    targets = chosen_targets(args)
    root = Path(args.output) if args.output else default_output()
    check_output("-o", root, folder=True)
    named = sources(args.names)
    for source in named:
        if _composed_at_run_time(source.declaration):
            print(composed_at_run_time(source.declaration))
    named = [s for s in named if not _composed_at_run_time(s.declaration)]
    if not named:
        print(f"{root}: nothing to generate")
        return 0
    if args.names:
        refuse_numpy_only(named, targets)
    files = {}
    for target in targets:
        files.update(target_files_for(named, args.reduction, target))
    if args.check:
        found = differences(root, files, complete=False)
        found += strays(root, files, targets) if not args.names else []
        for difference in found:
            print(difference, end="" if difference.endswith("\n") else "\n")
        if found:
            print(f"{root}: {len(found)} file(s) stale; run `symnet generate` to update")
            return 1
        print(f"{root}: all {len(files)} files up to date")
        return 0
    changed = write_files(root, files)
    print(f"{root}: wrote {len(changed)} file(s), {len(files) - len(changed)} unchanged")
    for rel in changed:
        print(f"  {rel}")
    return 0


def add_command(commands) -> None:
    generating = commands.add_parser(
        "generate", help="write numpy modules (forward/backward, loss and gradient) into "
                         "generated/ or -o DIR; --check compares instead",
        description="Generate readable, overflow-free numpy modules (forward and backward, "
                    "loss and gradient) from declarations into generated/ or -o DIR; "
                    "--check writes nothing and reports the files that differ.")
    generating.add_argument("names", metavar="NAME", nargs="*",
                            help="catalog names, FILE.py:NAME, or FILE.py for all of a file's "
                                 "declarations (default: the whole catalog)")
    generating.add_argument("-o", "--output", metavar="DIR",
                            help="the folder to write into (default: the checkout's "
                                 "generated/); modules go to DIR/<kind>/NAME.py")
    generating.add_argument("--check", action="store_true",
                            help="write nothing; exit 1 and show a diff if a file differs")
    generating.add_argument("--reduction", choices=REDUCTIONS, default="mean",
                            help="a loss's reduction over the batch (default: mean, 1/N)")
    generating.add_argument("--target", choices=TARGETS, action="append",
                            help="numpy, torch (a torch.autograd.Function per declaration, "
                                 "into DIR/torch_modules/) or jax (jax.custom_vjp, into "
                                 "DIR/jax_modules/); may be repeated (default: all three "
                                 "for the whole catalog, numpy for named declarations)")
    generating.set_defaults(run=cmd_generate)
