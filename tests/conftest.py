import pytest

from hwsim.dram_pim.spec import dram_spec_from_dict

# Distinct timing values so that no rule hides behind another in the hand-worked cases.
TEST_TIMING = dict(tCK_ps=1000, nBL=2, nCL=11, nCWL=5, nRCD_RD=13, nRCD_WR=9, nRP=12, nRAS=29, nRC=45,
                   nWR=14, nRTP=6, nCCD_S=3, nCCD_L=7, nRRD_S=4, nRRD_L=8, nWTR_S=3, nWTR_L=9, nFAW=37,
                   nRFC=101, nREFI=2001, nRFCpb=51, nRTW=2, nRCD_MAC=17, nMAC_RES=5, nGB_MAC=1, nRMW=4,
                   nCLREG=1, nCWLREG=2)


def make_spec(**changes):
    """A small DRAM (2 channels x 2 ranks x 2 bank groups x 4 banks) with TEST_TIMING."""
    raw = {
        "organization": dict(channels=2, ranks=2, bankgroups=2, banks_per_group=4, rows=64, columns=16,
                             burst_bytes=32),
        "timing": dict(TEST_TIMING),
        "controller": {},
    }
    for key, value in changes.items():
        section, field = key.split("__")
        raw[section][field] = value
    return dram_spec_from_dict(raw, file="<test>")


@pytest.fixture
def small_spec():
    return make_spec()
