"""In-order command streams (how the PIM-GPT ASIC drives AiM-style channels): every command is
issued at the first tick that satisfies every timing rule and is not before the previous command
of its channel (one command per channel per tick). Channels are independent."""

from __future__ import annotations

import numpy as np
from numba import njit

from hwsim.dram_pim.device import H_BANKS_PER_CHANNEL, Device, bank_state_ok, earliest, issue


@njit(cache=True)
def issue_stream(st, cmd, bank, row, start_tick, channel_tick, out_tick):
    """Issue commands in array order; `channel_tick[c]` is the first free command slot of channel c
    (updated in place); `out_tick[k]` receives the issue tick of command k. Returns -1 on success
    or the index of the first command whose bank-state precondition does not hold."""
    bpc = st[H_BANKS_PER_CHANNEL]
    for k in range(cmd.shape[0]):
        b = bank[k]
        c = b // bpc
        if not bank_state_ok(st, cmd[k], b, row[k]):
            return k
        t = max(earliest(st, cmd[k], b), channel_tick[c], start_tick)
        issue(st, cmd[k], b, row[k], t)
        out_tick[k] = t
        channel_tick[c] = t + 1
    return -1


class StreamIssuer:
    """A device plus per-channel command slots; issues command arrays in order and keeps counts."""

    def __init__(self, device: Device):
        self.device = device
        self.channel_tick = np.zeros(device.spec.organization.channels, dtype=np.int64)

    def issue(self, cmd: np.ndarray, bank: np.ndarray, row: np.ndarray, start_tick: int = 0) -> np.ndarray:
        """Issue the commands; return their issue ticks (command-clock cycles)."""
        cmd = np.ascontiguousarray(cmd, dtype=np.int64)
        bank = np.ascontiguousarray(bank, dtype=np.int64)
        row = np.ascontiguousarray(row, dtype=np.int64)
        out = np.empty(len(cmd), dtype=np.int64)
        bad = issue_stream(self.device.state, cmd, bank, row, int(start_tick), self.channel_tick, out)
        if bad >= 0:
            from hwsim.dram_pim.commands import Cmd
            raise RuntimeError(f"illegal command stream: {Cmd(int(cmd[bad])).name} to bank {int(bank[bad])} "
                               f"row {int(row[bad])} violates its bank-state precondition (internal error)")
        return out
