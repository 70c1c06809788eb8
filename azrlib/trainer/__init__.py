"""The self-play trainer (AZR loop with TRR++), its variants, and the RLVR/SFT baselines."""
