"""Training on real MNIST files: loss goes down, kill-and-resume, preflight errors, the data loader."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from capsnet.checkpoint import card_path, load_tensors, resume_path
from capsnet.data import epoch_batches, load_mnist, random_shift
from capsnet.train import TrainConfig, TrainError, run

from .conftest import REPO


def test_loader_reads_real_gz_files(mnist_dir):
    train = load_mnist(mnist_dir, train=True)
    test = load_mnist(mnist_dir, train=False)
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 28, 28)
    assert torch.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert train.labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    x, y = test.batch(torch.arange(4))
    assert x.shape == (4, 1, 28, 28) and 0 <= x.min() and x.max() <= 1 and x.max() == 1


def test_random_shift_moves_content_by_at_most_2px_with_zero_fill():
    img = torch.zeros(200, 1, 28, 28)
    img[:, 0, 10:18, 10:18] = 1.0
    shifted = random_shift(img, 2, torch.Generator().manual_seed(0))
    assert torch.allclose(shifted.sum((1, 2, 3)), img.sum((1, 2, 3)))  # nothing wraps or is lost
    ys, xs = [], []
    for s in shifted:
        nz = s[0].nonzero()
        ys.append(nz[:, 0].min().item() - 10)
        xs.append(nz[:, 1].min().item() - 10)
    assert set(ys) == set(range(-2, 3)) and set(xs) == set(range(-2, 3))
    edge = torch.zeros(1, 1, 28, 28)
    edge[0, 0, :, 0] = 1.0
    total = sum(random_shift(edge, 2, torch.Generator().manual_seed(i)).sum().item() for i in range(10))
    assert total < 10 * 28  # content shifted past the border is dropped, never wrapped


def test_epoch_order_is_a_function_of_seed_and_epoch():
    a = torch.cat(epoch_batches(100, 32, seed=1, epoch=3))
    b = torch.cat(epoch_batches(100, 32, seed=1, epoch=3))
    c = torch.cat(epoch_batches(100, 32, seed=1, epoch=4))
    assert torch.equal(a, b) and not torch.equal(a, c) and sorted(a.tolist()) == list(range(100))


def test_a_few_steps_lower_the_loss(mnist_dir, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=50, train_limit=500, test_limit=200, data_dir=str(mnist_dir),
                      out=str(tmp_path / "m.safetensors"), progress=False)
    state = run(cfg, [])
    h = state["history"]
    assert len(h) == 2 and h[1]["loss"] < h[0]["loss"]
    assert (tmp_path / "m.safetensors").exists() and card_path(tmp_path / "m.safetensors").exists()


def _train_cmd(mnist_dir, out, *extra):
    return [sys.executable, "-m", "capsnet.train", "--epochs", "3", "--batch-size", "50", "--train-limit", "150",
            "--test-limit", "50", "--data-dir", str(mnist_dir), "--out", str(out), "--no-progress", *extra]


def test_kill_and_resume_reaches_the_same_weights(mnist_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = tmp_path / "ref" / "m.safetensors"
    subprocess.run(_train_cmd(mnist_dir, ref), cwd=REPO, env=env, check=True, capture_output=True, timeout=600)

    out = tmp_path / "killed" / "m.safetensors"
    proc = subprocess.Popen(_train_cmd(mnist_dir, out), cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file = resume_path(out)
    deadline = time.time() + 300
    while not state_file.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, meta = load_tensors(state_file)  # whatever moment it died at, the state file is whole
    import json

    done = json.loads(meta["state"])["epoch"]
    assert 1 <= done <= 3
    r = subprocess.run(_train_cmd(mnist_dir, out, "--resume"), cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    if done < 3:
        assert f"resuming after epoch {done}" in r.stderr
    a, _ = load_tensors(ref)
    b, _ = load_tensors(out)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    card = json.loads(card_path(out).read_text())
    assert [h["epoch"] for h in card["history"]] == [1, 2, 3]


def test_unwritable_output_fails_before_training(tmp_path, mnist_dir):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cfg = TrainConfig(epochs=1, data_dir=str(mnist_dir), out=str(blocker / "m.safetensors"), progress=False)
    t = time.perf_counter()
    with pytest.raises(TrainError, match="cannot write checkpoints"):
        run(cfg, [])
    assert time.perf_counter() - t < 60  # seconds, not the hours a run takes


def test_train_cli_prints_one_line_error(tmp_path, mnist_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = subprocess.run([sys.executable, "-m", "capsnet.train", "--data-dir", str(mnist_dir), "--out",
                        str(blocker / "m.safetensors")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("error: cannot write")


def test_missing_data_dir_message(tmp_path):
    with pytest.raises(RuntimeError, match="MNIST not found"):
        load_mnist(tmp_path / "empty", train=False, download=False)


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A real 1 MiB tmpfs: a full disk without touching the machine's own."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()})")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_full_disk_fails_before_training(tiny_filesystem, mnist_dir):
    cfg = TrainConfig(epochs=1, data_dir=str(mnist_dir), out=str(tiny_filesystem / "m.safetensors"), progress=False)
    t = time.perf_counter()
    with pytest.raises(TrainError, match=r"only \d+ MiB free .* checkpoints need about \d+ MiB"):
        run(cfg, [])
    assert time.perf_counter() - t < 60  # seconds, not the hours a run takes
    assert list(tiny_filesystem.iterdir()) == []


@pytest.mark.slow
def test_sigkill_at_random_points_never_corrupts_and_resume_matches(mnist_dir, tmp_path):
    """Kill training at random moments (mid-epoch, mid-evaluation, mid-write) until it finishes by itself:
    every file on disk is always whole, and the final weights equal an uninterrupted run's."""
    import json
    import random

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = tmp_path / "ref" / "m.safetensors"
    t0 = time.perf_counter()
    subprocess.run(_train_cmd(mnist_dir, ref), cwd=REPO, env=env, check=True, capture_output=True, timeout=600)
    full_run = time.perf_counter() - t0

    out = tmp_path / "killed" / "m.safetensors"
    rng = random.Random(1234)
    kills = 0
    for attempt in range(12):
        cmd = _train_cmd(mnist_dir, out, *(["--resume"] if attempt else []))
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(0.2, 0.7) * full_run)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        for path in (out, resume_path(out)):
            if path.exists():
                load_tensors(path)  # raises CheckpointError on a torn file
        if card_path(out).exists():
            json.loads(card_path(out).read_text())
        if proc.returncode == 0:
            assert not [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")]  # leftovers cleaned
            break
    else:
        pytest.fail("training never finished across 12 restarts")
    assert kills >= 1
    a, _ = load_tensors(ref)
    b, _ = load_tensors(out)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_init_from_continues_schedule_and_ships_the_weight_average(mnist_dir, tmp_path):
    """Stage 2 starts from stage 1's weights with a fresh Adam; lr and epoch count go on, the card keeps both stages."""
    common = dict(batch_size=50, train_limit=200, test_limit=100, data_dir=str(mnist_dir), progress=False)
    first = tmp_path / "one.safetensors"
    run(TrainConfig(epochs=1, out=str(first), **common), ["--epochs", "1"])
    second = tmp_path / "two.safetensors"
    cfg = TrainConfig(epochs=3, out=str(second), init_from=str(first), ema_decay=0.5, **common)
    state = run(cfg, ["--init-from", str(first), "--epochs", "3"])
    h = state["history"]
    assert [e["epoch"] for e in h] == [1, 2, 3]
    assert h[1]["lr"] == pytest.approx(cfg.lr * cfg.lr_decay) and h[2]["lr"] == pytest.approx(cfg.lr * cfg.lr_decay**2)
    import json

    card = json.loads(card_path(second).read_text())
    assert [s["epochs"] for s in card["stages"]] == [[1, 1], [2, 3]]
    assert card["stages"][1]["init"] == str(first) and "--init-from" in card["stages"][1]["command"]
    weights, meta = load_tensors(second)
    resume, _ = load_tensors(resume_path(second))
    assert meta["epoch"] == "3"
    assert all(torch.equal(weights[k], resume[f"ema.{k}"]) for k in weights)  # the average is what ships
    assert not torch.equal(weights["W"], resume["model.W"])

    # a warm restart: this stage's schedule starts again at --lr, and a resume keeps it
    third = tmp_path / "three.safetensors"
    cfg = TrainConfig(epochs=4, out=str(third), init_from=str(second), lr=4e-4, lr_decay=0.5, lr_restart=True, **common)
    args = ["--init-from", str(second), "--epochs", "4", "--lr", "4e-4", "--lr-decay", "0.5", "--lr-restart"]
    h = run(cfg, args)["history"]
    assert [e["epoch"] for e in h] == [1, 2, 3, 4] and h[3]["lr"] == pytest.approx(4e-4)
    h = run(TrainConfig(**{**cfg.__dict__, "epochs": 5, "resume": True}), args + ["--resume"])["history"]
    assert h[4]["lr"] == pytest.approx(2e-4)
    card = json.loads(card_path(third).read_text())
    assert [s["epochs"] for s in card["stages"]] == [[1, 1], [2, 3], [4, 5]] and "--lr-restart" in card["stages"][2]["command"]


def test_shards_are_disjoint_equal_and_rank_zero_of_one_is_the_whole_shuffle():
    whole = epoch_batches(103, 10, seed=2, epoch=5)
    assert torch.equal(torch.cat(epoch_batches(103, 10, seed=2, epoch=5, rank=0, world_size=1)), torch.cat(whole))
    shards = [torch.cat(epoch_batches(103, 5, seed=2, epoch=5, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 51
    assert not set(shards[0].tolist()) & set(shards[1].tolist())
    assert sorted(torch.cat(shards).tolist()) == sorted(torch.cat(whole)[:102].tolist())


def test_torchrun_two_cpu_processes_train_one_job(mnist_dir, tmp_path):
    """Two gloo processes, stopped and resumed: one set of weights that loads, a card with world_size 2, different shards, falling loss."""
    import json

    from capsnet.checkpoint import load_checkpoint
    from capsnet.distributed import digest

    out = tmp_path / "ddp" / "m.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "capsnet.train",
           "--batch-size", "50", "--train-limit", "300", "--test-limit", "50",
           "--data-dir", str(mnist_dir), "--out", str(out), "--no-progress"]
    r = subprocess.run(cmd + ["--epochs", "1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run(cmd + ["--epochs", "2", "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("resuming after epoch 1") == 1 and r.stderr.count("epoch 2/2:") == 1  # only rank 0 reports
    load_checkpoint(out)
    card = json.loads(card_path(out).read_text())
    assert card["world_size"] == 2 and card["stages"][-1]["world_size"] == 2
    h = card["history"]
    assert h[1]["loss"] < h[0]["loss"]
    for e in h:
        a, b = e["rank_shards"]
        assert a != b
        expected = [digest(torch.cat(epoch_batches(300, 25, 0, e["epoch"] - 1, rank, 2))) for rank in range(2)]
        assert [a, b] == expected
    assert not [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_weight_average_is_the_hand_computed_ema_from_the_starting_weights(tmp_path):
    """--ema-decay: the average starts at the weights training starts from (not at the first step's), and the
    resume state keeps its weights under the model's own keys."""
    from capsnet import CapsNet
    from capsnet.train import load_resume_state, save_resume_state, weight_average

    torch.manual_seed(0)
    model = CapsNet()
    ema = weight_average(model, 0.9, torch.device("cpu"))
    want = {k: v.clone() for k, v in model.state_dict().items()}
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ema.update_parameters(model)
        want = {k: 0.9 * want[k] + 0.1 * v for k, v in model.state_dict().items()}
    got = ema.module.state_dict()
    assert all(torch.allclose(got[k], want[k], rtol=1e-5, atol=1e-6) for k in want)
    assert not any(p.requires_grad for p in ema.parameters())
    path = tmp_path / "m.resume.safetensors"
    save_resume_state(path, model, torch.optim.Adam(model.parameters()), {"epoch": 3}, ema)
    tensors, _ = load_tensors(path)
    assert {k for k in tensors if k.startswith("ema.")} == {f"ema.{k}" for k in model.state_dict()}
    back = load_resume_state(path, lambda m: torch.optim.Adam(m.parameters()))[3]
    assert all(torch.equal(back.state_dict()[k], got[k]) for k in got)


def test_huge_pages_are_the_trainers_not_the_packages():
    """Importing capsnet (the explorer does) leaves THP_MEM_ALLOC_ENABLE alone; the trainer's entry sets it before
    any tensor exists, which is early enough: PyTorch reads it at the first CPU allocation, not at import."""
    code = ("import os, torch, capsnet, capsnet.train as t\n"
            "print('THP_MEM_ALLOC_ENABLE' in os.environ)\n"
            "t.use_huge_pages()\n"
            "x = torch.ones(2**24)\n"  # 64 MB
            "a = x.data_ptr(); mine = False; kb = 0\n"
            "for line in open('/proc/self/smaps'):\n"
            "    f = line.split()\n"
            "    if '-' in f[0] and not f[0].endswith(':'):\n"
            "        lo, hi = (int(v, 16) for v in f[0].split('-')); mine = lo <= a < hi\n"
            "    elif mine and f[0] == 'AnonHugePages:': kb = int(f[1])\n"
            "print(os.environ['THP_MEM_ALLOC_ENABLE'], kb)\n")
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    before, after = r.stdout.split("\n")[:2]
    assert before == "False" and after.split()[0] == "1"
    thp = "/sys/kernel/mm/transparent_hugepage/enabled"
    if os.path.exists(thp) and "[never]" not in open(thp).read():
        assert int(after.split()[1]) > 0  # the tensor lies on huge pages
