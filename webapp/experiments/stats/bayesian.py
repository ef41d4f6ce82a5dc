"""Bayesian probability that the treatment beats control.

Rates: independent Beta(1, 1) priors give Beta(1 + conversions, 1 + failures) posteriors,
and P(p_t > p_c) is computed exactly with the closed-form sum of Evan Miller ("Formulas
for Bayesian A/B testing") in log space, iterating over whichever of the four integer
posterior parameters is smallest. Beyond ``EXACT_TERMS_LIMIT`` terms both posteriors are
replaced by normals with the same mean and variance (error negligible at that size).

Means: flat priors and the normal approximation, P = Phi((m_t - m_c) / se).
"""

import math

import numpy as np
from scipy import special
from scipy import stats as scipy_stats

from webapp.experiments.stats.frequentist import difference_standard_error, require_kind
from webapp.experiments.stats.summaries import VariantSummary
from webapp.experiments.stats.validation import require_positive_count

EXACT_TERMS_LIMIT = 1_000_000
PRIOR_ALPHA = 1
PRIOR_BETA = 1


def probability_beta_greater(
    treatment_alpha: int, treatment_beta: int, control_alpha: int, control_beta: int
) -> float:
    """P(X_t > X_c) for independent X_t ~ Beta(a_t, b_t), X_c ~ Beta(a_c, b_c), integer a, b."""
    a_t = require_positive_count(treatment_alpha, "treatment_alpha")
    b_t = require_positive_count(treatment_beta, "treatment_beta")
    a_c = require_positive_count(control_alpha, "control_alpha")
    b_c = require_positive_count(control_beta, "control_beta")
    smallest = min(a_t, b_t, a_c, b_c)
    if smallest > EXACT_TERMS_LIMIT:
        return _normal_beta_greater(a_t, b_t, a_c, b_c)
    # P(p_t > p_c) = P(q_c > q_t) with q = 1 - p ~ Beta(b, a); complements swap the roles.
    if smallest == a_t:
        probability = _miller_sum(a_c, b_c, a_t, b_t)
    elif smallest == a_c:
        probability = 1 - _miller_sum(a_t, b_t, a_c, b_c)
    elif smallest == b_c:
        probability = _miller_sum(b_t, a_t, b_c, a_c)
    else:
        probability = 1 - _miller_sum(b_c, a_c, b_t, a_t)
    return min(1.0, max(0.0, probability))


def probability_to_beat_proportion(control: VariantSummary, treatment: VariantSummary) -> float:
    """P(treatment rate > control rate) under Beta(1, 1) priors, exact."""
    require_kind(control, treatment, "proportion")
    control_conversions = round(control.total)
    treatment_conversions = round(treatment.total)
    return probability_beta_greater(
        PRIOR_ALPHA + treatment_conversions,
        PRIOR_BETA + treatment.n - treatment_conversions,
        PRIOR_ALPHA + control_conversions,
        PRIOR_BETA + control.n - control_conversions,
    )


def probability_to_beat_mean(control: VariantSummary, treatment: VariantSummary) -> float:
    """P(treatment mean > control mean), normal approximation with flat priors."""
    require_kind(control, treatment, "mean")
    difference = treatment.mean - control.mean
    standard_error = difference_standard_error(control, treatment)
    if standard_error == 0:
        return 0.5 if difference == 0 else float(difference > 0)
    return float(scipy_stats.norm.cdf(difference / standard_error))


def _miller_sum(a_a: int, b_a: int, a_b: int, b_b: int) -> float:
    """P(X_B > X_A): sum over i < a_B of B(a_A+i, b_A+b_B) / ((b_B+i) B(1+i, b_B) B(a_A, b_A))."""
    i = np.arange(a_b, dtype=np.float64)
    log_terms = (
        special.betaln(a_a + i, b_a + b_b)
        - np.log(b_b + i)
        - special.betaln(1 + i, b_b)
        - special.betaln(a_a, b_a)
    )
    return float(np.exp(special.logsumexp(log_terms)))


def _normal_beta_greater(a_t: int, b_t: int, a_c: int, b_c: int) -> float:
    mean_t, variance_t = _beta_moments(a_t, b_t)
    mean_c, variance_c = _beta_moments(a_c, b_c)
    return float(scipy_stats.norm.cdf((mean_t - mean_c) / math.sqrt(variance_t + variance_c)))


def _beta_moments(alpha: int, beta: int) -> tuple[float, float]:
    total = alpha + beta
    return alpha / total, alpha * beta / (total * total * (total + 1))
