"""Statistics engine for A/B tests and bandits: plain numbers in, frozen dataclasses out.

Framework-free (numpy + scipy only). Typical use for one metric of one experiment::

    control = proportion_summary(conversions=120, n=2400)
    treatment = proportion_summary(conversions=151, n=2390)
    result = compare_proportions(control, treatment)
    srm = sample_ratio_mismatch([2400, 2390], weights=[50, 50])
"""

from webapp.experiments.stats.bandit import (
    ArmPosterior,
    BanditAllocation,
    arm_posterior,
    thompson_allocation,
)
from webapp.experiments.stats.bayesian import (
    probability_beta_greater,
    probability_to_beat_mean,
    probability_to_beat_proportion,
)
from webapp.experiments.stats.comparison import Comparison, compare_means, compare_proportions
from webapp.experiments.stats.corrections import CorrectionMethod, adjust_p_values
from webapp.experiments.stats.cuped import CupedResult, CupedSums, cuped_adjust, cuped_sums
from webapp.experiments.stats.frequentist import (
    HypothesisTest,
    two_proportion_z_test,
    welch_t_test,
)
from webapp.experiments.stats.guardrails import GuardrailResult, guardrail_check
from webapp.experiments.stats.power import (
    SampleSizePlan,
    sample_size_for_mean,
    sample_size_for_proportion,
)
from webapp.experiments.stats.sequential import (
    SequentialResult,
    confidence_sequence,
    confidence_sequence_from_estimate,
)
from webapp.experiments.stats.srm import SrmResult, sample_ratio_mismatch
from webapp.experiments.stats.summaries import (
    Interval,
    VariantSummary,
    mean_summary,
    mean_summary_from_moments,
    proportion_summary,
    wilson_interval,
)

__all__ = [
    "ArmPosterior",
    "BanditAllocation",
    "Comparison",
    "CorrectionMethod",
    "CupedResult",
    "CupedSums",
    "GuardrailResult",
    "HypothesisTest",
    "Interval",
    "SampleSizePlan",
    "SequentialResult",
    "SrmResult",
    "VariantSummary",
    "adjust_p_values",
    "arm_posterior",
    "compare_means",
    "compare_proportions",
    "confidence_sequence",
    "confidence_sequence_from_estimate",
    "cuped_adjust",
    "cuped_sums",
    "guardrail_check",
    "mean_summary",
    "mean_summary_from_moments",
    "probability_beta_greater",
    "probability_to_beat_mean",
    "probability_to_beat_proportion",
    "proportion_summary",
    "sample_ratio_mismatch",
    "sample_size_for_mean",
    "sample_size_for_proportion",
    "thompson_allocation",
    "two_proportion_z_test",
    "welch_t_test",
    "wilson_interval",
]
