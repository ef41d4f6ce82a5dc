"""Constrained beam search over the prefix trie of the catalog's semantic-ID code tuples.

At each level only children of the kept prefixes that lead to an allowed item are
expanded, so decoding yields real, allowed items only. Every allowed item gets a score:
the joint log-probability of its codes if its parent prefix survived to the last level,
otherwise the log-probability of its deepest expanded prefix, one `TIER_GAP` lower per
level it fell short, so a full-catalog ranking puts decoded items first.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

# Far below any joint log-probability of a few levels of softmax over codes.
TIER_GAP = 1.0e4

# (level, codes of the beams' prefixes (users, beams, level)) -> (users, beams, level size)
StepLogProbs = Callable[[int, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PrefixTrie:
    """Per depth t: each item's prefix id among the distinct t-code prefixes, their codes."""

    codes: np.ndarray
    prefix_ids: tuple[np.ndarray, ...]
    prefix_codes: tuple[np.ndarray, ...]

    @property
    def depth(self) -> int:
        """Codes per item."""
        return int(self.codes.shape[1])


def prefix_trie(codes: np.ndarray) -> PrefixTrie:
    """The trie of item code tuples, which must be distinct and non-negative."""
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] == 0 or (codes < 0).any():
        raise ValueError(f"codes must be a non-empty (items, levels) array >= 0: {codes.shape}")
    if len(np.unique(codes, axis=0)) != len(codes):
        raise ValueError("item code tuples must be distinct (disambiguate them first)")
    ids, prefixes = [np.zeros(len(codes), dtype=np.int64)], [np.zeros((1, 0), dtype=np.int64)]
    for depth in range(1, codes.shape[1] + 1):
        distinct, inverse = np.unique(codes[:, :depth], axis=0, return_inverse=True)
        ids.append(inverse.ravel().astype(np.int64))
        prefixes.append(distinct)
    return PrefixTrie(codes, tuple(ids), tuple(prefixes))


@dataclass(frozen=True)
class BeamResult:
    """Full-catalog scores (users, items) and the final beam's items, best first (-1: none)."""

    scores: torch.Tensor
    items: torch.Tensor


def beam_search(
    trie: PrefixTrie, step_log_probs: StepLogProbs, allowed: torch.Tensor, beam: int
) -> BeamResult:
    """Decode level by level keeping the `beam` best prefixes that lead to an allowed item.

    `allowed` (users, items) is False for items that must not come out (e.g. seen ones);
    their scores are -inf.
    """
    device = allowed.device
    users, n_items = allowed.shape
    codes = torch.from_numpy(trie.codes).to(device)
    ids = [torch.from_numpy(prefix).to(device) for prefix in trie.prefix_ids]
    kept = torch.zeros((users, 1), dtype=torch.long, device=device)
    kept_scores = torch.zeros((users, 1), device=device)
    scores = torch.full((users, n_items), -torch.inf, device=device)
    for level in range(trie.depth):
        prefix_codes = torch.from_numpy(trie.prefix_codes[level]).to(device)[kept]
        log_probs = step_log_probs(level, prefix_codes).float()
        item_scores = _child_scores(ids[level], codes[:, level], kept, kept_scores, log_probs)
        item_scores = item_scores.masked_fill(~allowed, -torch.inf)
        reached = torch.isfinite(item_scores)
        tier = TIER_GAP * (trie.depth - 1 - level)
        scores = torch.where(reached, item_scores - tier, scores)
        candidates = torch.full(
            (users, len(trie.prefix_codes[level + 1])), -torch.inf, device=device
        )
        candidates.scatter_reduce_(1, ids[level + 1].expand(users, -1), item_scores, "amax")
        kept_scores, kept = candidates.topk(min(beam, candidates.shape[1]), dim=1)
    # At the last level prefixes are items: ids[depth] maps items to their tuple's rank.
    item_of_tuple = torch.empty(n_items, dtype=torch.long, device=device)
    item_of_tuple[ids[trie.depth]] = torch.arange(n_items, device=device)
    items = torch.where(torch.isfinite(kept_scores), item_of_tuple[kept], -1)
    return BeamResult(scores, items)


def _child_scores(
    parent_ids: torch.Tensor,
    child_codes: torch.Tensor,
    kept: torch.Tensor,
    kept_scores: torch.Tensor,
    log_probs: torch.Tensor,
) -> torch.Tensor:
    """Per user and item: its kept parent's score plus its next code's log-probability.

    -inf where the item's parent prefix was not kept (or was kept with score -inf).
    """
    users, beams = kept.shape
    slot_of_prefix = torch.full(
        (users, int(parent_ids.max()) + 1), -1, dtype=torch.long, device=kept.device
    )
    slots = torch.arange(beams, device=kept.device).expand(users, -1)
    slot_of_prefix.scatter_(1, kept, slots)
    slot = slot_of_prefix[:, parent_ids]
    in_beam = slot >= 0
    slot = slot.clamp(min=0)
    size = log_probs.shape[2]
    flat = log_probs.reshape(users, beams * size)
    child = flat.gather(1, slot * size + child_codes[None, :])
    total = kept_scores.gather(1, slot) + child
    return total.masked_fill(~in_beam, -torch.inf)
