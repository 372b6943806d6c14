"""Ring collectives: chunk ownership, the step schedules, their closed forms, the ideal bounds and
the DRAM-traffic accounting the simulation must reproduce.

The timed collectives run inside the system kernel (`hwsim.t3.system`, `COLL_*` modes):

* ring reduce-scatter as a CU kernel (baseline, RCCL-like): N-1 send steps over N chunks. Step 0
  reads the GPU's own chunk c(g, 0) and sends it; step s (1..N-2) waits for the partial sum of
  chunk c(g, s) to land in the receive buffer (written by the upstream GPU's remote stores), reads
  it and the local copy, adds on a CU and sends the sum; step N-1 does the same but writes the
  fully reduced chunk c(g, N-1) locally. Each step is split into slices of `slice_KiB` that
  pipeline through `cus` workers;
* ring reduce-scatter with near-memory updates (the "Ideal-RS+NMC" bound's RS): arrivals are
  UPDs straight into the local chunk, so a step reads only the updated chunk and sends it;
* ring all-gather as a CU kernel: N-1 steps; each reads the chunk (own reduced chunk first, then
  the one that arrived) and sends it; arrivals are plain writes;
* T3's fused RS: no collective kernel; the GEMM's stage-1 stores go remote, later stages update
  locally, the tracker triggers DMAs that send partial sums as updates (`GEMM_T3` mode).

Chunk c(g, s) = (s - g) mod N is both the chunk GPU g's GEMM produces at stage s and the chunk its
RS handles at step s, so GPU g+1 handles at step s+1 what GPU g sent at step s.
"""

from __future__ import annotations

from dataclasses import dataclass


def chunk_at(g: int, s: int, n: int) -> int:
    """Chunk GPU g handles at ring step (or GEMM stage) s."""
    return (s - g) % n


def owner_chunk(g: int, n: int) -> int:
    """The chunk GPU g holds fully reduced after the reduce-scatter."""
    return chunk_at(g, n - 1, n)


def serialise_ps(nbytes: int, bandwidth_GBps: float) -> int:
    """ps to put `nbytes` on a link (integer ceiling, as the link model)."""
    mbps = int(round(bandwidth_GBps * 1000))
    return (nbytes * 1_000_000 + mbps - 1) // mbps


def ring_rs_time_idle_ps(chunk_bytes: int, n: int, latency_ps: int, bandwidth_GBps: float) -> int:
    """Ring reduce-scatter on an idle system with no memory or compute cost and one slice per step:
    (N-1) (alpha + c / B)."""
    return (n - 1) * (latency_ps + serialise_ps(chunk_bytes, bandwidth_GBps))


def ideal_overlap_ps(t_gemm: int, t_rs: int, t_ag: int) -> int:
    """Ideal-GEMM-RS-Overlap: GEMM and RS perfectly overlapped with no contention, then AG."""
    return max(t_gemm, t_rs) + t_ag


@dataclass(frozen=True)
class RsTraffic:
    """DRAM bytes per GPU, in units of one chunk c = S/N (S: the GEMM output)."""

    reads: int
    writes: int


def baseline_rs_traffic(n: int) -> RsTraffic:
    """CU ring RS: step 0 reads c; steps 1..N-1 read 2c; N-1 incoming chunks written; final chunk
    written: reads (2N-1)c, writes Nc."""
    return RsTraffic(reads=2 * n - 1, writes=n)


def nmc_rs_traffic(n: int) -> RsTraffic:
    """RS with near-memory updates: steps 0..N-2 read c; N-1 incoming chunks are updates."""
    return RsTraffic(reads=n - 1, writes=n - 1)


def t3_rs_traffic(n: int) -> RsTraffic:
    """T3 fused: DMA reads of stages 2..N-1 ((N-2)c) and N-1 incoming updates ((N-1)c); the GEMM's
    own stores (N-1 local updates, stage 1 remote) replace its plain output writes (Nc)."""
    return RsTraffic(reads=n - 2, writes=n - 1)


def ag_traffic(n: int) -> RsTraffic:
    return RsTraffic(reads=n - 1, writes=n - 1)
