"""(ε, δ) of client-level DP over rounds, from Google's `dp_accounting` (Rényi DP accountant).

Each committed round is one Gaussian mechanism with noise multiplier z (noise stddev over clip
norm), applied to a cohort sampled with probability q (Poisson subsampling; q = 1.0 when the
sampling is unknown or not secret). The only state is the number of committed rounds, so a
restarted coordinator rebuilds the accountant with `PrivacyAccountant.from_rounds`.

`dp_accounting` comes with the `server` extra; a device never imports this module.
"""

from __future__ import annotations

import logging
import math

import dp_accounting
from dp_accounting.rdp import RdpAccountant


def _drop_excluded_order_notes(record: logging.LogRecord) -> bool:
    """dp_accounting logs a warning for each Rényi order it cannot compute for a sampled round, every round.

    It then leaves that order out, which can only make ε larger (safer), so the note is noise in
    the coordinator's log.
    """
    return "Excluding this order" not in record.getMessage()


logging.getLogger("absl").addFilter(_drop_excluded_order_notes)


class PrivacyAccountant:
    """Counts committed rounds and reports their (ε, δ): per round and in total."""

    def __init__(self, noise_multiplier: float, sampling_rate: float, delta: float) -> None:
        if not (math.isfinite(noise_multiplier) and noise_multiplier > 0):
            raise ValueError(f"expected a finite noise_multiplier > 0, got {noise_multiplier}")
        if not 0 < sampling_rate <= 1:
            raise ValueError(f"expected a sampling_rate in (0, 1], got {sampling_rate}")
        if not 0 < delta < 1:
            raise ValueError(f"expected a delta in (0, 1), got {delta}")
        self.noise_multiplier = float(noise_multiplier)
        self.sampling_rate = float(sampling_rate)
        self.delta = float(delta)
        self.rounds = 0
        self._epsilons: dict[int, float] = {0: 0.0}  # by round count: a sampled round's ε costs ~0.3 s to compute

    @classmethod
    def from_rounds(cls, noise_multiplier: float, sampling_rate: float, delta: float, rounds: int) -> PrivacyAccountant:
        """An accountant that has already seen `rounds` committed rounds (the store's count after a restart)."""
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
            raise ValueError(f"expected a whole number of rounds ≥ 0, got {rounds!r}")
        accountant = cls(noise_multiplier, sampling_rate, delta)
        accountant.rounds = rounds
        return accountant

    def step(self) -> None:
        """One more committed round; call it when the round commits, never for a failed attempt."""
        self.rounds += 1

    def epsilon(self) -> float:
        """ε of all committed rounds together, at this accountant's δ (0.0 before the first)."""
        return self._epsilon(self.rounds)

    def epsilon_per_round(self) -> float:
        """ε of one round alone, at the same δ. Rounds compose sublinearly: epsilon() ≤ rounds × this."""
        return self._epsilon(1)

    def _epsilon(self, rounds: int) -> float:
        if rounds not in self._epsilons:
            self._epsilons[rounds] = self._compute(rounds)
        return self._epsilons[rounds]

    def _compute(self, rounds: int) -> float:
        round_event: dp_accounting.DpEvent = dp_accounting.GaussianDpEvent(self.noise_multiplier)
        if self.sampling_rate < 1:
            round_event = dp_accounting.PoissonSampledDpEvent(self.sampling_rate, round_event)
        accountant = RdpAccountant()
        accountant.compose(dp_accounting.SelfComposedDpEvent(round_event, rounds))
        return float(accountant.get_epsilon(self.delta))

    def __repr__(self) -> str:
        return (
            f"PrivacyAccountant(noise_multiplier={self.noise_multiplier}, sampling_rate={self.sampling_rate}, "
            f"delta={self.delta}, rounds={self.rounds})"
        )
