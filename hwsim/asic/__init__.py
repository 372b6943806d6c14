"""hwsim.asic"""
