"""Building and running one T3 system simulation (Python side of `system.run_system`).

`Setup` holds everything static for one case (GEMM plan, DRAM specs, parameters); `simulate`
runs one activity mix (baseline GEMM, T3 fused GEMM+RS, a ring collective) and returns a
`SimResult` with times, per-stream DRAM bursts, command counts and the optional command log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwsim.dram_pim.commands import N_CMDS, Cmd
from hwsim.dram_pim.device import Device
from hwsim.dram_pim.spec import DramSpec, load_dram_spec, with_channels
from hwsim.errors import InputError
from hwsim.mapping.address import field_bits
from hwsim.t3 import system as S
from hwsim.t3.dma import count_sim_bursts, make_dma
from hwsim.t3.link import LK_SENT, make_lcfg, make_links
from hwsim.t3.memctrl import (M_COUNTS, M_LOG, M_NLOG, M_OCC_INT, M_OCC_MAX, POL_FRFCFS, POL_MCA, make_mc_state,
                              make_mcfg)
from hwsim.t3.params import SystemParams
from hwsim.t3.producer import BURST, GemmPlan, build_programs, chunk_of
from hwsim.t3.tracker import K_SCAL, S_N_FALLBACK, S_PEAK, make_tracker

_DEC_KIND = {"column": 0, "rank": 1, "bankgroup": 2, "bank": 3, "row": 4}


@dataclass
class Setup:
    plan: GemmPlan
    params: SystemParams
    dspec_map: DramSpec      # all channels of one GPU: address mapping, peak bandwidth
    dspec_dev: DramSpec      # the simulated channels of all simulated GPUs
    n_gpu: int
    ch_sim: int
    ch_tot: int
    gpu_period_ps: int
    comp_ps: int
    dec: np.ndarray
    programs: dict = field(default_factory=dict)   # write_allocate -> GpuPrograms

    @property
    def scale(self) -> float:
        """Bursts summed over the simulated channels of all simulated GPUs x scale = bursts of one
        whole GPU."""
        return self.ch_tot / self.ch_sim / self.n_gpu

    def programs_for(self, write_allocate: bool):
        if write_allocate not in self.programs:
            p = self.params
            slots = p.gpu.cus * p.gpu.wg_per_cu
            self.programs[write_allocate] = build_programs(
                self.plan, list(range(self.n_gpu)), l2_bytes=int(p.gpu.l2_MB * (1 << 20)), slots=slots,
                write_allocate=write_allocate, group_m=p.gemm.raster_group_m)
        return self.programs[write_allocate]


def make_setup(plan: GemmPlan, params: SystemParams, *, file: str | None = None) -> Setup:
    p = params
    n_gpu = plan.tp if p.sim.gpus == "explicit" else 1
    ch_tot = p.dram.channels
    ch_sim = p.sim.channels_simulated
    if ch_sim > ch_tot or ch_tot % ch_sim:
        raise InputError(file, "system.sim.channels_simulated",
                         f"got {ch_sim}; expected a divisor of system.dram.channels = {ch_tot}")
    overrides = dict(p.dram.overrides)
    if not p.sim.refresh:
        overrides = {**overrides, "controller": {**overrides.get("controller", {}), "refresh": "none"}}
    base = load_dram_spec(preset=p.dram.preset, overrides=overrides or None, file=file, path="system.dram")
    if base.address_mapping[-1] != "channel":
        raise InputError(file, "system.dram.overrides.address_mapping",
                         "the T3 model needs a channel-interleaved mapping (channel as the lowest field)")
    if base.organization.burst_bytes != BURST:
        raise InputError(file, "system.dram.preset", f"needs {BURST}-byte bursts, got {base.organization.burst_bytes}")
    dmap = with_channels(base, ch_tot)
    ddev = with_channels(base, n_gpu * ch_sim)
    bits = field_bits(dmap)
    dec = np.array([[_DEC_KIND[f], bits[f]] for f in reversed(dmap.address_mapping) if f != "channel"],
                   dtype=np.int64)
    period = int(round(1000.0 / p.gpu.clock_GHz))
    flops = plan.tile_flops()
    rate = p.gpu.flops_per_cycle_per_cu * p.gpu.compute_efficiency
    comp_ps = int(np.ceil(flops / rate)) * period
    min_tile = int(plan.c_bytes.min())
    if min_tile < BURST * ch_tot:
        raise InputError(file, "system.gemm", f"smallest output tile is {min_tile} B; it must cover every channel "
                                               f"({BURST} B x {ch_tot} channels): use larger tiles or fewer channels")
    return Setup(plan, params, dmap, ddev, n_gpu, ch_sim, ch_tot, period, comp_ps, dec)


@dataclass
class SimResult:
    status: int
    time_ps: int
    t_gemm_ps: int
    t_coll_ps: int
    t_t3_ps: int
    bursts: np.ndarray           # [n_gpu, stream, dir] on simulated channels
    cmd_counts: np.ndarray       # [N_CMDS] summed over simulated channels
    link_bytes: int              # per GPU (mean over simulated GPUs)
    tracker_peak: int
    tracker_fallbacks: int
    dma_count: int
    occ_mean: np.ndarray         # [2] mean DRAM-queue occupancy per class (mean over channels)
    occ_max: np.ndarray          # [2]
    mca_threshold: int
    mca_util: float
    stage_t0: np.ndarray
    stage_t1: np.ndarray
    events: int
    n_requests: int
    log: np.ndarray | None = None        # [n, 6] tick, cmd, bank, row, col, req
    requests: dict | None = None
    samples: np.ndarray | None = None
    messages: dict | None = None
    dma_t: np.ndarray | None = None
    fire_t: np.ndarray | None = None


def tracker_capacity_tiles(setup: Setup) -> int:
    """Live tiles one GPU can track. `per_gpu`: `entries`. `per_mc`: every memory controller holds
    `entries`, one per live tile that has update bursts on its channel; a tile of b bursts spans
    min(b, channels) channels, so the GPU tracks entries x channels / spanned tiles. Every output
    tile covers all channels (checked in `make_setup`), so this is `entries` as well: each MC's
    table needs an entry for every live tile."""
    p = setup.params.tracker
    if p.placement == "per_gpu":
        return p.entries
    spanned = min(setup.ch_tot, int(setup.plan.c_bytes.min()) // BURST)
    return p.entries * setup.ch_tot // max(spanned, 1)


def _estimate_requests(setup: Setup, gemm: int, coll: int, progs) -> int:
    plan = setup.plan
    frac = setup.ch_sim / setup.ch_tot
    c_total = plan.c_bytes_total()
    nbytes = 0
    if gemm != S.GEMM_NONE:
        nbytes += int(progs.fill_bytes.sum()) + 3 * c_total
    if coll != S.COLL_NONE:
        nbytes += 4 * c_total
    per_gpu = int(nbytes * frac / BURST * 1.02) + 64 * (plan.n_wg + 8)
    return per_gpu * setup.n_gpu


def simulate(setup: Setup, *, gemm: int, coll: int, policy: int = POL_FRFCFS, record: bool = False,
             timeline: bool = False, nomem: bool = False, slice_bytes: int | None = None) -> SimResult:
    """Run one activity mix to completion."""
    p = setup.params
    plan = setup.plan
    n_gpu, ch_sim, ch_tot = setup.n_gpu, setup.ch_sim, setup.ch_tot
    tp, tpc = plan.tp, plan.tiles_per_chunk
    progs = setup.programs_for(gemm == S.GEMM_BASE) if gemm != S.GEMM_NONE else setup.programs_for(True)
    t = setup.dspec_dev.timing
    o = setup.dspec_dev.organization
    sb = slice_bytes or p.collective.slice_KiB * 1024
    sb = max(BURST, sb // BURST * BURST)
    n_slices = -(-plan.chunk_bytes // sb)
    if coll != S.COLL_NONE and not nomem:
        last = plan.chunk_bytes - (n_slices - 1) * sb
        if last < BURST * ch_tot:
            raise InputError(None, "system.collective.slice_KiB",
                             f"the last slice of a chunk is {last} B; it must cover every channel")
    slots = p.gpu.cus * p.gpu.wg_per_cu
    cfg = np.zeros(S.N_CFG, dtype=np.int64)
    cfg[S.C_NGPU], cfg[S.C_CHSIM], cfg[S.C_CHTOT], cfg[S.C_TCK] = n_gpu, ch_sim, ch_tot, t.tCK_ps
    cfg[S.C_GEMM], cfg[S.C_COLL] = gemm, coll
    cfg[S.C_NSLOTS], cfg[S.C_NCU], cfg[S.C_PREFETCH] = slots, p.gpu.cus, p.gemm.prefetch_ksteps
    cfg[S.C_NWG], cfg[S.C_NK], cfg[S.C_TPC], cfg[S.C_TP] = plan.n_wg, plan.nk, tpc, tp
    cfg[S.C_COMP_PS] = setup.comp_ps
    cfg[S.C_L2LAT] = int(round(p.gpu.l2_hit_latency_ns * 1000))
    cfg[S.C_MEMLAT] = int(round(p.gpu.mem_latency_ns * 1000))
    cfg[S.C_LAUNCH] = int(round(p.gemm.wg_launch_ns * 1000))
    cfg[S.C_NENG] = p.dma.engines
    cfg[S.C_TXLIMIT] = p.dma.tx_limit_KiB * 1024
    cfg[S.C_DMA_LAT] = int(round(p.dma.trigger_latency_ns * 1000))
    cfg[S.C_CWORKERS] = p.collective.cus
    cfg[S.C_NSLICES] = n_slices
    cfg[S.C_CU_MBPS] = int(round(p.gpu.cu_stream_bytes_per_cycle * p.gpu.clock_GHz * 1000))
    cfg[S.C_NOMEM] = int(nomem)
    cfg[S.C_THR_FIXED] = p.mca.threshold
    cfg[S.C_THR_MIN] = p.mca.min_threshold
    cfg[S.C_QCAP] = p.dram.queue_entries
    cfg[S.C_NBL] = t.nBL
    cfg[S.C_RANKS], cfg[S.C_BG], cfg[S.C_BPG] = o.ranks, o.bankgroups, o.banks_per_group
    cfg[S.C_CHUNK_BYTES] = plan.chunk_bytes
    cfg[S.C_SLICE_BYTES] = sb
    cfg[S.C_RECV_BASE] = plan.recv_base
    cfg[S.C_RD_UNLOADED] = (t.nRCD_RD + t.nCL + t.nBL) * t.tCK_ps
    cfg[S.C_MCA] = int(policy == POL_MCA)
    cfg[S.C_BANKS_PER_CH] = o.ranks * o.bankgroups * o.banks_per_group
    cfg[S.C_NDEC] = len(setup.dec)
    cfg[S.C_ROWS] = o.rows
    mcfg = make_mcfg(setup.dspec_dev, policy=policy, qcap=p.dram.queue_entries,
                     starvation_ps=int(round(p.mca.starvation_ns * 1000)),
                     class_priority=p.mca.compute_first_in_queue)
    # Static per-GPU tables: output tile burst ranges, tracker expectations, DMA descriptors.
    c_b0 = (plan.c_off // BURST).astype(np.int64)
    c_b1 = (-(-(plan.c_off + plan.c_bytes[None, :]) // BURST)).astype(np.int64)
    n_keys = tp * tpc
    expected = np.zeros((n_gpu, n_keys), dtype=np.int64)
    desc_b0 = np.zeros((n_gpu, n_keys), dtype=np.int64)
    desc_b1 = np.zeros((n_gpu, n_keys), dtype=np.int64)
    for g in range(n_gpu):
        for s in range(tp):
            c = chunk_of(g, s, tp)
            desc_b0[g, s * tpc:(s + 1) * tpc] = c_b0[c]
            desc_b1[g, s * tpc:(s + 1) * tpc] = c_b1[c]
            if s > 0:
                for l in range(tpc):
                    expected[g, s * tpc + l] = 2 * count_sim_bursts(int(c_b0[c, l]), int(c_b1[c, l]), ch_sim, ch_tot)
    n_req_cap = _estimate_requests(setup, gemm, coll, progs)
    n_msgs = n_gpu * (plan.n_wg + tp * n_slices) + 16
    n_acc = progs.acc_fill.size
    dev_n_ranks = n_gpu * ch_sim * o.ranks
    lcfg = make_lcfg(int(round(p.link.latency_ns * 1000)), int(round(p.link.bandwidth_GBps * 1000)),
                     p.link.rx_buffer_KiB * 1024)
    samples_cap = 0
    sample_ps = 0
    if timeline:
        sample_ps = 200_000
        samples_cap = 200_000
    while True:
        dev = Device(setup.dspec_dev)
        log_cap = (3 * n_req_cap + 1024) if record else 0
        M = make_mc_state(n_gpu * ch_sim, dev.n_banks, dev_n_ranks, p.dram.queue_entries, n_req_cap, t.nREFI, log_cap)
        RQ = tuple(np.zeros(n_req_cap, dtype=np.int64) for _ in range(13))
        n_fills = len(progs.fill_b0)
        P = (
            np.full(n_gpu * slots, -1, dtype=np.int64),                  # P_SLOT_WG
            np.zeros(n_gpu * slots, dtype=np.int64),                     # P_NLOAD
            np.zeros(n_gpu * slots, dtype=np.int64),                     # P_NCOMP
            np.zeros(n_gpu * slots, dtype=np.int64),                     # P_BUSY
            np.zeros((n_gpu * slots, p.gemm.prefetch_ksteps + 1), dtype=np.int64),  # P_PEND
            np.zeros((n_gpu * slots, p.gemm.prefetch_ksteps + 1), dtype=np.int64),  # P_RLB
            np.zeros(n_gpu * p.gpu.cus, dtype=np.int64),                 # P_CUFREE
            np.zeros(n_gpu, dtype=np.int64),                             # P_NEXTWG
            np.zeros(max(n_fills, 1), dtype=np.int64),                   # P_FILL_LEFT
            np.zeros(max(n_fills, 1), dtype=np.int64),                   # P_FILL_DONE
            np.full(max(n_fills, 1), -1, dtype=np.int64),                # P_FILL_WHEAD
            np.zeros(n_acc + 1, dtype=np.int64),                         # P_W_SLOT
            np.zeros(n_acc + 1, dtype=np.int64),                         # P_W_K
            np.zeros(n_acc + 1, dtype=np.int64),                         # P_W_NEXT
            np.zeros(1, dtype=np.int64),                                 # P_W_N
            np.zeros((n_gpu, tp), dtype=np.int64),                       # P_STAGE_CNT
            np.full((n_gpu, tp), -1, dtype=np.int64),                    # P_STAGE_T0
            np.zeros((n_gpu, tp), dtype=np.int64),                       # P_STAGE_T1
            progs.wg_chunk, progs.wg_l, progs.acc_fill, progs.acc_miss,
            np.maximum(progs.fill_b0, 0) if n_fills else np.zeros(1, dtype=np.int64),
            progs.fill_b1 if n_fills else np.zeros(1, dtype=np.int64),
            c_b0, c_b1, plan.c_bytes.astype(np.int64),
            np.zeros(n_gpu * ch_sim, dtype=np.int64),                    # P_COMP_BURSTS
        )
        cap = tracker_capacity_tiles(setup)
        T = make_tracker(expected, cap, tpc)
        D = make_dma(p.dma.engines, desc_b0, desc_b1,
                     max(1, (p.dma.max_outstanding_KiB * 1024) * ch_sim // (BURST * ch_tot)), ch_sim, ch_tot)
        L = make_links(n_gpu, n_msgs, p.link.rx_buffer_KiB * 1024)
        MS = tuple(np.zeros(n_msgs, dtype=np.int64) for _ in range(10))
        n_ops = n_gpu * tp * n_slices
        CO = (np.zeros(n_ops, dtype=np.int64), np.zeros(n_ops, dtype=np.int64), np.zeros(n_ops, dtype=np.int64),
              np.full(n_gpu, -1, dtype=np.int64), np.full(n_gpu, -1, dtype=np.int64),
              np.full(n_ops, -1, dtype=np.int64), np.full(n_gpu, p.collective.cus, dtype=np.int64))
        SS = (np.zeros((n_gpu, 5, 2), dtype=np.int64), np.zeros((max(samples_cap, 1), 5), dtype=np.int64),
              np.full((n_gpu, n_keys, 2), -1, dtype=np.int64), np.full((n_gpu, 3), -1, dtype=np.int64),
              np.full((n_gpu, n_keys), -1, dtype=np.int64))
        cfg[S.C_SAMPLE_PS] = sample_ps
        cn = np.zeros(S.N_CN, dtype=np.int64)
        S.run_system(cfg, dev.state, mcfg, M, RQ, P, T, D, L, lcfg, MS, CO, SS, setup.dec, cn)
        status = int(cn[S.N_STATUS])
        if status == 1:
            n_req_cap *= 2
            continue
        if record and M[M_NLOG][1]:
            n_req_cap = int(n_req_cap * 1.5)
            continue
        break
    if status == 2:
        raise RuntimeError(f"T3 system deadlock at {cn[S.T_END]} ps (gemm={gemm}, coll={coll}, policy={policy}); "
                           f"left: wg={cn[S.N_WG_LEFT]} req={cn[S.N_OUT]} msg={cn[S.N_MSG_OUT]} "
                           f"coll={cn[S.N_COLL_LEFT]} t3={cn[S.N_T3_LEFT]} dma={cn[S.N_DMA_PEND]}")
    if status == 3:
        raise RuntimeError(f"T3 system internal error (status 3, request {cn[S.N_ERR]})")
    counts = M[M_COUNTS].sum(axis=0)
    end = int(cn[S.T_END])
    occ_int = M[M_OCC_INT]
    occ_mean = occ_int.sum(axis=0) / max(end, 1) / (n_gpu * ch_sim)
    n_req = int(cn[S.N_REQ])
    res = SimResult(
        status=status, time_ps=end, t_gemm_ps=int(cn[S.T_GEMM_END]), t_coll_ps=int(cn[S.T_COLL_END]),
        t_t3_ps=int(cn[S.T_T3_END]), bursts=SS[S.SS_BURSTS].copy(), cmd_counts=counts[:N_CMDS].copy(),
        link_bytes=int(L[LK_SENT].sum()) // n_gpu,
        tracker_peak=int(T[K_SCAL][:, S_PEAK].max()), tracker_fallbacks=int(T[K_SCAL][:, S_N_FALLBACK].sum()),
        dma_count=int(cn[S.N_DMA_DONE]) // n_gpu, occ_mean=occ_mean, occ_max=M[M_OCC_MAX].max(axis=0).copy(),
        mca_threshold=int(SS[S.SS_THR][0, 0]), mca_util=float(SS[S.SS_THR][0, 1]) / 1e6,
        stage_t0=P[S.P_STAGE_T0].copy(), stage_t1=P[S.P_STAGE_T1].copy(), events=int(cn[S.N_EVENTS]),
        n_requests=n_req)
    if record:
        nl = int(M[M_NLOG][0])
        res.log = M[M_LOG][:nl].copy()
        res.requests = {name: RQ[i][:n_req].copy() for i, name in enumerate(
            ("bank", "row", "col", "op", "cls", "arrive", "stream", "kind", "owner", "msg", "b", "gpu", "done"))}
    if timeline:
        res.samples = SS[S.SS_SAMPLES][:int(cn[S.N_NSAMP])].copy()
        nm = int(cn[S.N_MSGS])
        res.messages = {name: MS[i][:nm].copy() for i, name in enumerate(
            ("kind", "src", "step", "idx", "bytes", "left", "credit", "t0", "t1", "t2"))}
        res.dma_t = SS[S.SS_DMA_T].copy()
        res.fire_t = SS[S.SS_FIRE_T].copy()
    return res


def command_rows(setup: Setup, res: SimResult) -> list[tuple]:
    """The command log as checker rows (tick, channel, rank, bankgroup, bank, row, column, command)."""
    from hwsim.dram_pim.commands import META, RANK

    o = setup.dspec_dev.organization
    rows = []
    for tick, c, bank, row, col, _ in res.log.tolist():
        cmd = Cmd(c)
        ch = bank // (o.ranks * o.banks_per_rank)
        rank = (bank // o.banks_per_rank) % o.ranks
        if META[cmd].scope == RANK:
            rows.append((tick, ch, rank, -1, -1, row if cmd == Cmd.ACT_AB else -1, -1, cmd))
        else:
            bg = (bank // o.banks_per_group) % o.bankgroups
            bk = bank % o.banks_per_group
            uses_row = cmd in (Cmd.ACT, Cmd.RD, Cmd.WR, Cmd.RDA, Cmd.WRA, Cmd.UPD)
            uses_col = cmd in (Cmd.RD, Cmd.WR, Cmd.RDA, Cmd.WRA, Cmd.UPD)
            rows.append((tick, ch, rank, bg, bk, row if uses_row else -1, col if uses_col else -1, cmd))
    return rows
