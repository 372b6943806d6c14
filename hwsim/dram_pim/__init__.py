"""hwsim.dram_pim"""
