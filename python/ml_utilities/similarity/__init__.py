"""Music similarity and plagiarism detection (the specification's third use case).

- :func:`train_siamese_network` (and its sync twin): a key-invariant siamese encoder over
  frame-level perceptual features, trained on similar pairs and augmented positives, with a
  decision threshold calibrated for a false-positive rate: a :class:`SimilarityModel`.
- :class:`SimilarityIndex`: a catalogue's segment embeddings on FAISS, persisted and versioned,
  re-ranked by the aligner.
- :func:`compare` / :func:`detect_plagiarism`: a score and the evidence (which passage of the
  query is which passage of the reference, transposed how, at which tempo), and
  :func:`plot_comparison`.
- :mod:`.augment`: the audio-level transformations (varispeed, EQ, noise, re-encoding, mix).

Torch is imported only when an encoder is built or loaded.
"""

from __future__ import annotations

from .align import Comparison, Passage, WindowMatch, compare, compare_many, plot_comparison
from .augment import augmented_views
from .features import FRAME_RATE, SAMPLE_RATE, SequenceFeatures, as_sequence, sequence_features
from .index import Detection, SimilarityIndex, detect_plagiarism
from .model import (
    SimilarityModel,
    calibrate_threshold,
    train_siamese_network,
    train_siamese_network_sync,
)

__all__ = [
    "FRAME_RATE",
    "SAMPLE_RATE",
    "Comparison",
    "Detection",
    "Passage",
    "SequenceFeatures",
    "SimilarityIndex",
    "SimilarityModel",
    "WindowMatch",
    "as_sequence",
    "augmented_views",
    "calibrate_threshold",
    "compare",
    "compare_many",
    "detect_plagiarism",
    "plot_comparison",
    "sequence_features",
    "train_siamese_network",
    "train_siamese_network_sync",
]
