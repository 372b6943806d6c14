"""hwsim.mapping"""
