"""Per-call peak memory and CUDA time (vlabench/metrics/memory.py): the CPU measure sees a known
allocation and not a no-op, both CPU methods do the right arithmetic, and the CUDA path resets
the peak before the call and reads it and the events after (torch.cuda faked: no GPU here)."""

from __future__ import annotations

import pytest

from vlabench.metrics.memory import MIB, CallMeter, RssPeak

torch = pytest.importorskip("torch")


def _metered(fn) -> tuple:
    m = CallMeter("cpu")
    m.start()
    fn()
    return m.stop()


def test_a_200_mib_tensor_shows_as_a_200_mib_rss_peak():
    def call():
        t = torch.ones(200 * 2**20 // 4)   # 200 MiB, written (resident), freed before stop
        assert float(t[-1]) == 1.0

    mb, kind, cuda = _metered(call)
    assert kind == "rss" and cuda is None
    assert 190.0 <= mb < 260.0


def test_a_call_that_allocates_nothing_shows_a_small_peak():
    mb, kind, _ = _metered(lambda: sum(range(100)))
    assert kind == "rss" and 0.0 <= mb < 8.0


def test_the_peak_is_the_increase_over_the_rss_at_start_not_the_lifetime_peak():
    big = torch.ones(150 * 2**20 // 4)
    del big                              # the process high-water mark is now >= 150 MiB
    mb, _, _ = _metered(lambda: None)
    assert mb < 8.0


def _fake_proc(tmp_path, rss_kib: int, hwm_kib: int, writable: bool = True):
    (tmp_path / "status").write_text(f"Name:\tx\nVmHWM:\t{hwm_kib} kB\nVmRSS:\t{rss_kib} kB\n")
    if writable:
        (tmp_path / "clear_refs").write_text("")
    else:
        (tmp_path / "clear_refs").mkdir()   # opening it for writing fails like EACCES
    return tmp_path


def test_high_water_mark_method_resets_then_subtracts_the_start_rss(tmp_path):
    proc = _fake_proc(tmp_path, rss_kib=100 * 1024, hwm_kib=900 * 1024)
    r = RssPeak(proc)
    r.start()
    assert r.method == "hwm" and (proc / "clear_refs").read_text() == "5"
    _fake_proc(proc, rss_kib=110 * 1024, hwm_kib=164 * 1024)   # the call peaked at 164 MiB
    assert r.stop() == pytest.approx(64.0)


def test_without_clear_refs_a_thread_samples_statm(tmp_path):
    import os

    page = os.sysconf("SC_PAGE_SIZE")
    proc = _fake_proc(tmp_path, 0, 0, writable=False)
    pages = lambda mib: f"999 {int(mib * MIB) // page} 0 0 0 0 0\n"  # noqa: E731
    (proc / "statm").write_text(pages(100))
    r = RssPeak(proc, sample_s=0.001)
    r.start()
    assert r.method == "sampled"
    (proc / "statm").write_text(pages(180))
    for _ in range(100000):          # wait until the sampler has seen the peak
        if r._peak >= int(180 * MIB) // page * page:
            break
        r._stop.wait(0.001)
    (proc / "statm").write_text(pages(120))
    assert r.stop() == pytest.approx(80.0, abs=0.01)


def test_no_proc_means_no_memory_figure(tmp_path):
    r = RssPeak(tmp_path / "absent")
    r.start()
    assert r.stop() is None


def test_the_meta_device_meters_nothing():
    m = CallMeter("meta")
    m.start()
    assert m.stop() == (None, None, None)


class _FakeCuda:
    """torch.cuda's memory and event calls, recording their order."""

    def __init__(self):
        self.log: list[str] = []
        fake = self

        class Event:
            def __init__(self, enable_timing=False):
                assert enable_timing
                self.name = f"ev{len([x for x in fake.log if x.startswith('record')])}"

            def record(self):
                fake.log.append(f"record {self.name}")

            def synchronize(self):
                fake.log.append(f"sync {self.name}")

            def elapsed_time(self, end):
                fake.log.append(f"elapsed {self.name}->{end.name}")
                return 51.43

        self.Event = Event

    def reset_peak_memory_stats(self, device):
        self.log.append(f"reset {device}")

    def max_memory_allocated(self, device):
        self.log.append(f"max {device}")
        return 15104 * 2**20


def test_cuda_path_resets_the_peak_before_and_reads_peak_and_events_after(monkeypatch):
    fake = _FakeCuda()
    for name in ("Event", "reset_peak_memory_stats", "max_memory_allocated"):
        monkeypatch.setattr(torch.cuda, name, getattr(fake, name))
    m = CallMeter("cuda:0")
    m.start()
    assert fake.log == ["reset cuda:0", "record ev0"]
    fake.log.append("the call")
    assert m.stop() == (15104.0, "cuda", 51.43)
    assert fake.log[2:] == ["the call", "record ev1", "sync ev1", "elapsed ev0->ev1", "max cuda:0"]


def test_a_policy_call_records_memory_outside_its_latency_stages():
    import yaml
    from omegaconf import OmegaConf

    from vlabench.core import registry
    from vlabench.core.contracts import TaskInfo
    from vlabench.models.synthetic import synthetic_observation

    cfg = OmegaConf.create(yaml.safe_load(registry.entry("model", "openvla-tiny").path.read_text()))
    policy = registry.build("model", "openvla-tiny", cfg, pruner=registry.build("pruner", "none", None),
                            suite_cfg={"name": "libero_spatial", "unnorm_key": "libero_spatial_no_noops"},
                            device="cpu")
    policy.reset(TaskInfo(0, "t", "pick up the bowl"))
    s = policy.act(synthetic_observation(1)).stats
    assert s.mem_kind == "rss" and s.mem_peak_mb is not None and s.mem_peak_mb >= 0
    assert s.cuda_ms is None
    assert set(s.latency_ms) <= {"preprocess", "vision", "llm", "action_head", "pruner", "total"}
