"""u2netp-mirror release side: Sigstore signing and verification, GitHub release assets.

Torch-free by design: operators verify releases with the base install alone.
"""
