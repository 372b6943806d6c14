"""Chrome/Perfetto timeline of one T3 case: GEMM stages per GPU, DMA transfers, link messages and
DRAM-queue occupancy by class (channel 0), for the T3 and T3-MCA fused runs."""

from __future__ import annotations

from hwsim.timeline import Timeline

_MSG = ("remote store", "DMA update", "RS slice", "RS+NMC slice", "AG slice")


def t3_timeline(setup, runs, timeline: Timeline | None = None) -> Timeline:
    tl = timeline or Timeline()
    tpc = setup.plan.tiles_per_chunk
    for name in ("t3", "t3_mca"):
        r = runs[name]
        proc = f"{name} (fused GEMM+RS)"
        for g in range(r.stage_t0.shape[0]):
            for s in range(r.stage_t0.shape[1]):
                t0, t1 = int(r.stage_t0[g, s]), int(r.stage_t1[g, s])
                if t0 >= 0:
                    tl.span(proc, f"GPU{g} GEMM stages", f"stage {s + 1}", t0, t1 - t0, stage=s + 1)
        if r.dma_t is not None:
            for g in range(r.dma_t.shape[0]):
                for key in range(r.dma_t.shape[1]):
                    t0, t1 = int(r.dma_t[g, key, 0]), int(r.dma_t[g, key, 1])
                    if t0 >= 0 and t1 >= 0:
                        tl.span(proc, f"GPU{g} DMA", f"tile s{key // tpc + 1}.{key % tpc}", t0, t1 - t0,
                                stage=key // tpc + 1, tile=key % tpc)
        if r.messages is not None:
            m = r.messages
            for i in range(len(m["kind"])):
                t0, t1, t2 = int(m["t0"][i]), int(m["t1"][i]), int(m["t2"][i])
                if t1 <= 0:
                    continue
                tl.span(proc, f"GPU{int(m['src'][i])} link out", _MSG[int(m["kind"][i])], t0, t1 - t0,
                        bytes=int(m["bytes"][i]), arrives_ps=t2)
        if r.samples is not None:
            for t, c0, c1, f0, f1 in r.samples.tolist():
                tl.counter(proc, "DRAM queue ch0", int(t), compute=int(c0), communication=int(c1))
                tl.counter(proc, "waiting for admission ch0", int(t), compute=int(f0), communication=int(f1))
    return tl
