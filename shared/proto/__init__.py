"""Generated from protos/fedge/v1 by scripts/gen_protos.py. Do not edit."""
