"""hwsim.t3"""
