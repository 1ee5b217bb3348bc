"""Local, deterministic genomics test data for genomebus, and the accuracy yardstick.

A slice of the real human chrX (from Debian's smalt-examples, nothing downloaded), a diploid
sample simulated on it with mason (a truth VCF with genotypes and a gzipped FASTQ pair), and
``evaluate`` to score a call set against the truth.
"""

from .baseline import BaselineRun, align_and_call
from .evaluate import Accuracy, TypeAccuracy, evaluate
from .reference import ReferenceInfo, describe, find_source, make_reference
from .simulate import SimulatedSample, read_pairs_for, simulate_sample
from .tools import ToolFailed, ToolMissing

__all__ = [
    "Accuracy",
    "BaselineRun",
    "ReferenceInfo",
    "SimulatedSample",
    "ToolFailed",
    "ToolMissing",
    "TypeAccuracy",
    "align_and_call",
    "describe",
    "evaluate",
    "find_source",
    "make_reference",
    "read_pairs_for",
    "simulate_sample",
]
