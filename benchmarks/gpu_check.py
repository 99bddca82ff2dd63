"""GPU check: training steps of paper-size BasicVSR++ and VRT on one GPU, in one script (< 8 min).

    python benchmarks/gpu_check.py --out gpu_check.md     # one CUDA GPU (H100/H200)
    python benchmarks/gpu_check.py --dry-run              # CPU, tiny models: the same code, seconds

Measured, per model, on the papers' per-GPU training crops (BasicVSR++: 30 LR frames of 64x64;
VRT: 6 LR frames of 64x64; batch 1, as each of the papers' 8 GPUs saw):

- one training step in fp32, bf16 autocast, bf16 + channels_last, and bf16 + channels_last +
  ``torch.compile`` (compile time reported apart from the step time);
- the step time with an extra NR-IQA loss term and with an extra LPIPS-type FR term (measures
  that build offline: ``nriqa.quality.offline_names(differentiable=True)``);
- peak memory (``torch.cuda.max_memory_allocated``);
- a 1-process ``torchrun`` run of the kit's trainer (``nriqa.train.train``, demo data, paper-size
  BasicVSR++), next to the bare step at the trainer's input shape.

A step is what the trainer does without its bookkeeping: forward (under bf16 autocast where
asked), the objective's terms in float32 (``nriqa.losses.Objective``: Charbonnier plus the extra
term), backward, fused Adam. Each timed step is bracketed by device synchronisation; warm-up
steps come first; the table gives the median. Rows run in child processes (one per group:
eager rows of a model, the trainer, each compile), each with a time limit taken from one overall
budget, so a crash, an out-of-memory or a slow compile costs only its own rows. The markdown
section goes to ``--out`` (else stdout), ready to append to BENCHMARKS.md.

``--dry-run`` runs exactly this code on the CPU with the tiny models, tiny inputs, 1 warm-up and
1 timed step and the ``eager`` compile backend (dynamo tracing without code generation); its
numbers test the plumbing and measure nothing.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `import nriqa` resolves to this checkout

ROW_TAG = "GPUCHECK-ROW "
NR_PREFERENCE = ("niqe-kit", "niqe")  # the kit fit takes the dry run's 64 px frames
FR_PREFERENCE = ("lpips-vgg", "lpips-vgg-randtrunk", "lpips-alex", "dists", "dists-vgg-randtrunk")
NR_WEIGHT, FR_WEIGHT = 0.02, 0.1  # as in bench_trainer.py; a weight does not change the cost

#: per-mode settings; the models' input is LR (B, T, h, w); HR is 4x
MODES = {
    "gpu": dict(
        device="cuda", size="paper", warmup=3, steps=5, compile_backend="inductor", budget_s=450,
        shapes={"basicvsrpp": (1, 30, 64, 64), "vrt": (1, 6, 64, 64)},
        trainer=dict(model="basicvsrpp", batch=2, frames=15, lr_patch=32, steps=8, log_every=4),
        caps={"eager": 150, "trainer": 120, "compile": 180},
    ),
    "dry": dict(
        device="cpu", size="tiny", warmup=1, steps=1, compile_backend="eager", budget_s=480,
        shapes={"basicvsrpp": (1, 3, 16, 16), "vrt": (1, 2, 16, 16)},
        trainer=dict(model="basicvsrpp", batch=1, frames=3, lr_patch=16, steps=2, log_every=1),
        caps={"all": 300, "trainer": 170}, merge_groups=True,
    ),
}
MIN_GROUP_S = 30  # a group is skipped (not started) with less time than this left for it

STEP_ROWS = ("fp32", "bf16", "bf16+cl", "bf16+cl+compile", "bf16+cl+nr", "bf16+cl+fr")
TRAINER_ROWS = ("direct loop", "trainer (torchrun)")


# --------------------------------------------------------------------------------------------
# device helpers: the only places where CPU and CUDA differ
# --------------------------------------------------------------------------------------------
def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mb(device) -> float:
    """CUDA: peak bytes allocated since the last reset; CPU: peak RSS of this process."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _release(device) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} logical cores)"


def _tf32_note(device) -> str:
    import torch

    if device.type != "cuda":
        return "fp32 = plain float32 (CPU)"
    try:
        conv, mm = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    except Exception:  # noqa: BLE001 - a torch without these flags: say so, do not fail
        return "TF32 flags unknown"
    return f"fp32 = PyTorch defaults: cuDNN conv TF32 {'on' if conv else 'off'}, matmul TF32 {'on' if mm else 'off'}"


# --------------------------------------------------------------------------------------------
# the plan: rows grouped into child processes
# --------------------------------------------------------------------------------------------
def pick_terms() -> tuple[str | None, str | None]:
    """(NR-IQA measure, LPIPS-type FR measure) among the differentiable ones that build offline."""
    from nriqa import quality

    offline = quality.offline_names(differentiable=True)
    cards = {n: quality.card(n) for n in offline}
    nr = next((n for n in NR_PREFERENCE if n in cards), None) or next(
        (n for n, c in cards.items() if c.mode == "NR"), None)
    fr = next((n for n in FR_PREFERENCE if n in cards), None)
    return nr, fr


def plan(mode: dict, models: list[str], nr: str | None, fr: str | None, *, compile_rows: bool,
         trainer: bool) -> list[dict]:
    """Groups of cases; each group runs in one child process with its own time limit."""
    groups = []
    base = {"charbonnier": 1.0}
    for name in models:
        shape = tuple(mode["shapes"][name])
        common = dict(model=name, size=mode["size"], shape=shape, warmup=mode["warmup"], steps=mode["steps"])
        cases = [
            dict(common, id="fp32", bf16=False, channels_last=False, terms=base),
            dict(common, id="bf16", bf16=True, channels_last=False, terms=base),
            dict(common, id="bf16+cl", bf16=True, channels_last=True, terms=base),
        ]
        if nr:
            cases.append(dict(common, id="bf16+cl+nr", bf16=True, channels_last=True, terms={**base, nr: NR_WEIGHT}))
        if fr:
            cases.append(dict(common, id="bf16+cl+fr", bf16=True, channels_last=True, terms={**base, fr: FR_WEIGHT}))
        if trainer and name == mode["trainer"]["model"]:
            t = mode["trainer"]
            amp = mode["device"] == "cuda"  # the trainer's amp/channels_last "auto"
            cases.append(dict(common, id="direct loop", shape=(t["batch"], t["frames"], t["lr_patch"], t["lr_patch"]),
                              bf16=amp, channels_last=amp, terms=base, table="trainer"))
        groups.append(dict(kind="eager", cases=cases))
    if trainer:
        t = mode["trainer"]
        groups.append(dict(kind="trainer", cases=[dict(
            id="trainer (torchrun)", table="trainer", model=t["model"], size=mode["size"],
            shape=(t["batch"], t["frames"], t["lr_patch"], t["lr_patch"]), steps=t["steps"],
            log_every=t["log_every"], bf16=mode["device"] == "cuda", channels_last=mode["device"] == "cuda",
            terms=base)]))
    if compile_rows:
        for name in models:
            shape = tuple(mode["shapes"][name])
            groups.append(dict(kind="compile", cases=[dict(
                id="bf16+cl+compile", model=name, size=mode["size"], shape=shape, warmup=max(2, mode["warmup"]),
                steps=mode["steps"], bf16=True, channels_last=True, terms=base, compile=mode["compile_backend"])]))
    if mode.get("merge_groups"):  # one child for every step row (start-up costs more than the rows)
        steps = [c for g in groups if g["kind"] != "trainer" for c in g["cases"]]
        groups = [dict(kind="all", cases=steps)] + [g for g in groups if g["kind"] == "trainer"]
    return groups


# --------------------------------------------------------------------------------------------
# child: one training step, timed
# --------------------------------------------------------------------------------------------
def measure_case(case: dict, device) -> dict:
    import torch
    from torch import nn

    from nriqa.losses import Objective
    from nriqa.models import build, count_parameters

    torch.manual_seed(0)
    b, t, h, w = case["shape"]
    model = build(case["model"], case["size"]).to(device).train()
    if case["channels_last"]:  # as the trainer does: 4-D conv weights only (Conv3d would reject it)
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4, betas=(0.9, 0.99), fused=True)  # the trainer's optimizer
    objective = Objective(case["terms"], device=device)
    lr = torch.rand(b, t, 3, h, w, device=device)
    hr = torch.rand(b, t, 3, 4 * h, 4 * w, device=device)
    forward = model if not case.get("compile") else torch.compile(model, backend=case["compile"])
    validated = []

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=case["bf16"]):
            pred = forward(lr)
        pred = pred.float()
        if not validated:  # first call: the objective checks shapes and values (one host sync)
            terms = objective.terms(pred, hr)
            validated.append(True)
        else:  # then its term modules directly, as the trainer does: no host sync in the step
            terms = {k: m(pred, hr) for k, m in objective.losses.items()}
        total = sum(objective.weights[k] * v for k, v in terms.items())
        total.backward()
        opt.step()
        return total

    _reset_peak(device)
    warm = []
    for _ in range(case["warmup"]):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        warm.append(time.perf_counter() - t0)
    times = []
    for _ in range(case["steps"]):
        _sync(device)
        t0 = time.perf_counter()
        loss = step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    row = dict(case, shape=list(case["shape"]), params=count_parameters(model), step_s=step_s, times=times,
               warmup_s=warm, frames_per_s=b * t / step_s, peak_mb=_peak_mb(device), loss=float(loss))
    if case.get("compile"):  # the warm-up steps' time beyond ordinary steps: compilation (and recompiles)
        row["compile_s"] = max(0.0, sum(warm) - len(warm) * step_s)
    return row  # the model, optimizer and tensors go with this frame; the caller then frees the cache


def child_main(payload: dict) -> int:
    import torch

    if payload.get("threads"):
        torch.set_num_threads(int(payload["threads"]))
    device = torch.device(payload["device"])
    for case in payload["cases"]:
        try:
            row = measure_case(case, device)
        except Exception as exc:  # noqa: BLE001 - report it in the table, go on with the next row
            kind = "out of memory" if "out of memory" in str(exc).lower() else type(exc).__name__
            row = dict(case, error=f"{kind}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
        _release(device)
        print(ROW_TAG + json.dumps(row), flush=True)
    return 0


# --------------------------------------------------------------------------------------------
# child under torchrun: the kit's trainer
# --------------------------------------------------------------------------------------------
def trainer_main(payload: dict) -> int:
    """Three runs of the trainer in this process: a warm one (data decoded, kernels loaded), then
    ``n`` and ``n + k`` steps; the per-step time is the difference of the last two wall times / k,
    so set-up and the final checkpoint cancel. The trainer's own log gives a second figure."""
    import torch

    from nriqa.config import load_profile
    from nriqa.train import read_log, train

    if payload.get("threads"):
        torch.set_num_threads(int(payload["threads"]))
    case = payload["cases"][0]
    b, t, h, _ = case["shape"]
    n, k = int(case["log_every"]), int(case["steps"])

    def run(steps: int, folder: Path) -> tuple[float, Path]:
        cfg = load_profile("demo", [
            f"device={payload['device']}", f"model_size={case['size']}", f"data.batch_size={b}",
            f"data.num_frames={t}", f"data.lr_patch={h}", f"train.steps={steps}",
            f"train.log_every={n}", "train.ckpt_every=0", "train.gradnorm_every=0",
            "train.compile=false", "train.objective={charbonnier: 1.0}"])
        cfg["model"] = case["model"]
        t0 = time.perf_counter()
        out = train(cfg, folder, progress=False)
        return time.perf_counter() - t0, out

    try:
        with tempfile.TemporaryDirectory() as tmp:
            run(n, Path(tmp) / "warm")
            short, _ = run(n, Path(tmp) / "short")
            long, folder = run(n + k, Path(tmp) / "long")
            log = read_log(folder)
            done = json.loads((folder / "done.json").read_text())
        step_s = (long - short) / k
        logged = log["frames_per_s"].dropna().tolist()[1:]  # the first interval holds warm-up and validation
        logged_step_s = b * t / statistics.median(logged) if logged else None
        if step_s <= 0 and logged_step_s:  # set-up noise above k steps' time (tiny dry run, busy CPU)
            step_s = logged_step_s
        row = dict(case, shape=list(case["shape"]), step_s=step_s, frames_per_s=b * t / step_s,
                   logged_step_s=logged_step_s,
                   peak_mb=float(log["peak_mem_mb"].max()), world_size=int(done.get("world_size", 0)),
                   torchrun_world_size=os.environ.get("WORLD_SIZE"), run_s=[short, long])
    except Exception as exc:  # noqa: BLE001
        row = dict(case, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
    if os.environ.get("RANK", "0") == "0":
        print(ROW_TAG + json.dumps(row), flush=True)
    return 0


# --------------------------------------------------------------------------------------------
# parent: run the groups within the budget, render the section
# --------------------------------------------------------------------------------------------
def run_group(group: dict, payload: dict, timeout: float) -> list[dict]:
    cases = group["cases"]
    if timeout < MIN_GROUP_S:
        return [dict(c, error=f"skipped: {timeout:.0f} s left in the time budget") for c in cases]
    body = json.dumps({**payload, "cases": cases})
    if group["kind"] == "trainer":
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=1",
               str(Path(__file__).resolve()), "--trainer-child", body]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", body]
    env = dict(os.environ)
    if payload.get("threads"):
        env["OMP_NUM_THREADS"] = str(payload["threads"])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=str(REPO), start_new_session=True)
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the child and (under torchrun) its worker
        except ProcessLookupError:
            pass
        out, _ = proc.communicate()
    took = time.perf_counter() - t0
    rows = {}
    for line in out.splitlines():
        if line.startswith(ROW_TAG):
            row = json.loads(line[len(ROW_TAG):])
            rows[(row["model"], row["id"])] = row
    tail = "\n".join(line for line in out.splitlines() if not line.startswith(ROW_TAG))[-3000:]
    result = []
    for c in cases:
        row = rows.get((c["model"], c["id"]))
        if row is None:
            why = (f"timed out: not finished within {timeout:.0f} s" if timed_out
                   else f"child exited with code {proc.returncode} before this row")
            row = dict(c, error=why)
            if not timed_out:
                print(f"[gpu_check] {c['model']} {c['id']}: {why}; output tail:\n{tail}", file=sys.stderr)
        result.append(row)
    print(f"[gpu_check] {group['kind']} group ({', '.join(c['model'] + ' ' + c['id'] for c in cases)}): "
          f"{took:.0f} s", file=sys.stderr, flush=True)
    return result


def _fmt(x, digits: int = 3) -> str:
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "n/a"
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.{digits}g}"


def _ratio(x) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.2f}x"


def render(rows: list[dict], meta: dict) -> str:
    """The markdown section: a header that says how it was measured, the step table, the trainer table."""
    dry = meta["dry_run"]
    rows = [dict(r, error=r["error"].replace("|", "/")) if "error" in r else r for r in rows]
    by = {(r["model"], r["id"]): r for r in rows}
    randtrunk = (" - LPIPS-VGG with a random trunk: the same network, so the same cost, as `lpips-vgg`"
                 if meta["fr"] == "lpips-vgg-randtrunk" else "")
    out = [f"## GPU check{' - DRY RUN (CPU, tiny models: tests the script, measures nothing)' if dry else ''}", ""]
    out.append(f"`{meta['command']}` on {meta['device_name']}, torch {meta['torch']}, {meta['date']} "
               f"({meta['total_s']:.0f} s in total).")
    out.append("")
    crops = ("tiny inputs" if dry else
             "the papers' per-GPU training crops (BasicVSR++: 30 LR frames, VRT: 6, of 64x64; batch 1 per GPU)")
    out += [
        f"- Step = forward, `nriqa.losses.Objective` terms in float32, backward, fused Adam. Models at size "
        f"`{meta['size']}`; {crops}; input below is LR (B,T,h,w), HR is 4x.",
        f"- {meta['warmup']} warm-up step(s) (compile rows: at least 2), then the median of {meta['steps']} "
        f"timed step(s), each between device synchronisations. {meta['tf32']}.",
        "- `bf16` = bf16 autocast around the forward; `cl` = channels_last weights of every Conv2d (as the "
        f"trainer does); `compile` = `torch.compile(model, backend=\"{meta['compile_backend']}\")`. Compile s = "
        "the warm-up steps' time beyond as many ordinary steps (the first call compiles; a recompile on the "
        "second call is counted too).",
        f"- Extra terms: NR-IQA `{meta['nr']}` (weight {NR_WEIGHT}); LPIPS-type FR `{meta['fr']}` (weight "
        f"{FR_WEIGHT}){randtrunk}. "
        "Time vs bf16+cl = step time over the bf16+cl Charbonnier-only row.",
        f"- Peak memory: {meta['peak_how']}.",
        "",
        "| model | row | input (B,T,h,w) | params | step s | frames/s | speed-up vs fp32 | time vs bf16+cl | "
        "peak mem MB | compile s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model in meta["models"]:
        fp32 = by.get((model, "fp32"), {}).get("step_s")
        ref = by.get((model, "bf16+cl"), {}).get("step_s")
        for rid in STEP_ROWS:
            r = by.get((model, rid))
            if r is None:
                continue
            shape = "x".join(str(v) for v in r["shape"])
            if "error" in r:
                out.append(f"| {model} | {rid} | {shape} | | {r['error']} | | | | | |")
                continue
            terms = "+".join(k for k in r["terms"] if k != "charbonnier")
            label = f"{rid} ({terms})" if terms else rid
            out.append(f"| {model} | {label} | {shape} | {r['params']:,} | {_fmt(r['step_s'])} | "
                       f"{_fmt(r['frames_per_s'])} | {_ratio(fp32 / r['step_s'] if fp32 else None)} | "
                       f"{_ratio(r['step_s'] / ref if ref else None)} | {_fmt(r['peak_mb'])} | "
                       f"{_fmt(r.get('compile_s')) if 'compile' in rid else '-'} |")
    loop, run = (by.get((meta["trainer_model"], rid)) for rid in TRAINER_ROWS)
    if loop is None and run is None:
        return "\n".join(out) + "\n"
    out += [
        "",
        "Trainer: `nriqa.train.train` (demo profile: embedded clips, Charbonnier, amp and channels_last `auto`, "
        "no compile, grad clipping, EMA) in one process started by `torchrun --standalone --nproc_per_node=1` "
        "(WORLD_SIZE=1: the trainer joins no process group and does not wrap the model in DDP). Step s = "
        "difference of the wall times of an n-step and an (n+k)-step run (after a warm run), / k (where that "
        "difference is not positive, i.e. the runs' set-up varies by more than k steps take, the logged figure); "
        "`logged` = the same from the trainer's own frames/s log (steady-state intervals). Direct loop = the "
        "bare step above at the trainer's input and precision. Peak memory of the trainer: its own log "
        "(CUDA: max_memory_allocated since the process started; CPU: peak RSS).",
        "",
        "| model | row | input (B,T,h,w) | step s | frames/s | time vs direct loop | step s logged | "
        "peak mem MB | world size |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = loop.get("step_s") if loop and "error" not in loop else None
    for r in (loop, run):
        if r is None:
            continue
        shape = "x".join(str(v) for v in r["shape"])
        if "error" in r:
            out.append(f"| {r['model']} | {r['id']} | {shape} | {r['error']} | | | | | |")
            continue
        logged = _fmt(r.get("logged_step_s")) if "logged_step_s" in r else "-"
        world = str(r["world_size"]) if "world_size" in r else "-"
        out.append(f"| {r['model']} | {r['id']} | {shape} | {_fmt(r['step_s'])} | {_fmt(r['frames_per_s'])} | "
                   f"{_ratio(r['step_s'] / base if base else None)} | {logged} | {_fmt(r['peak_mb'])} | {world} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write the markdown section here (default: print it)")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny models, 1 step: tests the script")
    ap.add_argument("--models", nargs="+", default=["basicvsrpp", "vrt"], choices=["basicvsrpp", "vrt"])
    ap.add_argument("--warmup", type=int, help="warm-up steps per row (default: 3 GPU, 1 dry run)")
    ap.add_argument("--steps", type=int, help="timed steps per row (default: 5 GPU, 1 dry run)")
    ap.add_argument("--budget-s", type=float, help="overall time budget in seconds (default: 450 GPU)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    ap.add_argument("--no-trainer", action="store_true", help="skip the torchrun trainer rows")
    ap.add_argument("--threads", type=int, help="torch threads / OMP_NUM_THREADS of the children "
                                                 "(default: torch's choice on GPU, 1 in a dry run)")
    ap.add_argument("--json", help="also write the raw rows to this JSON file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--trainer-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child_main(json.loads(args.child))
    if args.trainer_child:
        return trainer_main(json.loads(args.trainer_child))

    t_start = time.perf_counter()
    import torch

    mode = dict(MODES["dry" if args.dry_run else "gpu"])
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check.py: torch sees no CUDA device. Run it on a GPU machine, or use --dry-run to test "
              "the script on the CPU.", file=sys.stderr)
        return 2
    for key in ("warmup", "steps", "budget_s"):
        if getattr(args, key) is not None:
            mode[key] = getattr(args, key)
    threads = args.threads if args.threads is not None else (1 if args.dry_run else None)
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(mode["device"])
    nr, fr = pick_terms()
    groups = plan(mode, args.models, nr, fr, compile_rows=not args.no_compile,
                  trainer=not args.no_trainer and mode["trainer"]["model"] in args.models)
    payload = dict(device=mode["device"], threads=threads)
    deadline = t_start + float(mode["budget_s"])
    rows: list[dict] = []
    for i, group in enumerate(groups):
        later = len(groups) - i - 1
        left = deadline - time.perf_counter() - later * MIN_GROUP_S
        rows += run_group(group, payload, min(mode["caps"][group["kind"]], left))
    meta = dict(
        dry_run=args.dry_run, device_name=_device_name(device), torch=torch.__version__,
        date=_dt.date.today().isoformat(), total_s=time.perf_counter() - t_start,
        command="python benchmarks/gpu_check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        warmup=mode["warmup"], steps=mode["steps"], size=mode["size"], compile_backend=mode["compile_backend"],
        tf32=_tf32_note(device), nr=nr, fr=fr, models=args.models, trainer_model=mode["trainer"]["model"],
        peak_how=("`torch.cuda.max_memory_allocated` over the warm-up and timed steps (weights, Adam state "
                  "and activations)" if device.type == "cuda" else
                  "peak RSS of the child process (CPU; cumulative over the rows one child runs)"))
    text = render(rows, meta)
    if args.out:
        out = Path(args.out)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out)
        print(f"gpu_check.py: wrote {out}", file=sys.stderr)
    else:
        print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(meta=meta, rows=rows), indent=2))
    failed = [f"{r['model']} {r['id']}: {r['error']}" for r in rows if "error" in r]
    if failed:
        print("gpu_check.py: rows without a measurement:\n  " + "\n  ".join(failed), file=sys.stderr)
    return 1 if (failed and args.dry_run) else 0


if __name__ == "__main__":
    raise SystemExit(main())
