"""RecVAE (Shenbin et al., 2020): Mult-VAE with a deeper encoder and a composite prior.

The encoder is five dense layers with swish, layer norm and sums of all earlier layers;
the decoder is linear. The prior mixes a standard normal, the posterior of the previous
epoch's encoder and a wide normal; the KL weight of a user is `gamma` times their item
count. Each epoch trains the encoder (with input dropout) `encoder_passes` times, freezes
a copy of it into the prior, then trains the decoder (no dropout) `decoder_passes` times.
"""

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.algorithms.base import HyperValue
from ml.algorithms.multvae import (
    EpochRunner,
    RowAutoencoder,
    RowNetwork,
    multinomial_log_likelihood,
)
from ml.algorithms.torch_training import adamw, dense_rows

ENCODER_LAYERS = 5
LAYER_NORM_EPSILON = 0.1
MIXTURE_WEIGHTS = (0.15, 0.75, 0.1)
WIDE_PRIOR_LOG_VARIANCE = 10.0


def log_normal_density(
    values: torch.Tensor, mean: torch.Tensor, log_variance: torch.Tensor
) -> torch.Tensor:
    """Elementwise log-density of a diagonal normal."""
    return -0.5 * (log_variance + math.log(2 * math.pi) + (values - mean) ** 2 / log_variance.exp())


class RecVAEEncoder(nn.Module):
    """Dense layers with swish and layer norm, each fed the sum of all earlier outputs."""

    def __init__(self, n_items: int, hidden: int, latent: int) -> None:
        super().__init__()
        sizes = [n_items] + [hidden] * (ENCODER_LAYERS - 1)
        self.layers = nn.ModuleList(nn.Linear(size, hidden) for size in sizes)
        self.norms = nn.ModuleList(
            nn.LayerNorm(hidden, eps=LAYER_NORM_EPSILON) for _ in range(ENCODER_LAYERS)
        )
        self.mean = nn.Linear(hidden, latent)
        self.log_variance = nn.Linear(hidden, latent)

    def forward(self, rows: torch.Tensor, dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of a batch of user rows."""
        hidden = F.dropout(F.normalize(rows), dropout, training=self.training)
        total: torch.Tensor | None = None
        for layer, norm in zip(self.layers, self.norms, strict=True):
            pre = layer(hidden) if total is None else layer(hidden) + total
            hidden = norm(F.silu(pre))
            total = hidden if total is None else total + hidden
        return self.mean(hidden), self.log_variance(hidden)


class CompositePrior(nn.Module):
    """A mixture of a standard normal, the previous encoder's posterior and a wide normal."""

    log_weights: torch.Tensor

    def __init__(self, n_items: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.previous_encoder = RecVAEEncoder(n_items, hidden, latent).requires_grad_(False)
        self.register_buffer("log_weights", torch.log(torch.tensor(MIXTURE_WEIGHTS)))

    def forward(self, rows: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """Elementwise log-density of the prior at `latent` for the users' rows."""
        self.previous_encoder.eval()
        mean, log_variance = self.previous_encoder(rows, 0.0)
        zeros = torch.zeros_like(latent)
        densities = [
            log_normal_density(latent, zeros, zeros),
            log_normal_density(latent, mean, log_variance),
            log_normal_density(latent, zeros, zeros + WIDE_PRIOR_LOG_VARIANCE),
        ]
        return torch.logsumexp(torch.stack(densities, dim=-1) + self.log_weights, dim=-1)


class RecVAENetwork(RowNetwork):
    """Encoder, linear decoder and composite prior; `loss` is the negative ELBO."""

    def __init__(self, n_items: int, hidden: int, latent: int, gamma: float) -> None:
        super().__init__()
        self.encoder = RecVAEEncoder(n_items, hidden, latent)
        self.decoder = nn.Linear(latent, n_items)
        self.prior = CompositePrior(n_items, hidden, latent)
        self.gamma = gamma
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_normal_(layer.weight)
                nn.init.zeros_(layer.bias)
        self.update_prior()

    def update_prior(self) -> None:
        """Copy the current encoder into the prior."""
        self.prior.previous_encoder.load_state_dict(copy.deepcopy(self.encoder.state_dict()))

    def loss(self, rows: torch.Tensor, dropout: float, train_encoder: bool) -> torch.Tensor:
        """Negative ELBO, with each user's KL weighted by `gamma` times their item count."""
        # The decoder's updates need no gradient through the encoder, the costliest part.
        with torch.set_grad_enabled(train_encoder and torch.is_grad_enabled()):
            mean, log_variance = self.encoder(rows, dropout)
        latent = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
        likelihood = multinomial_log_likelihood(rows, self.decoder(latent))
        divergence = log_normal_density(latent, mean, log_variance) - self.prior(rows, latent)
        weight = self.gamma * rows.sum(dim=1)
        return (weight * divergence.sum(dim=1) - likelihood).mean()

    def item_scores(self, rows: torch.Tensor) -> torch.Tensor:
        """The decoded posterior mean."""
        return self.decoder(self.last_hidden(rows))

    def output_layer(self) -> nn.Linear:
        """The linear decoder."""
        return self.decoder

    def last_hidden(self, rows: torch.Tensor) -> torch.Tensor:
        """The posterior mean."""
        mean, _ = self.encoder(rows, 0.0)
        return mean


class RecVAE(RowAutoencoder[RecVAENetwork]):
    """Scores a user's train row by the linear decoding of its posterior mean."""

    name = "recvae"

    def __init__(
        self,
        hidden: int = 600,
        latent: int = 200,
        dropout: float = 0.5,
        gamma: float = 0.005,
        encoder_passes: int = 3,
        decoder_passes: int = 1,
        learning_rate: float = 5e-4,
        weight_decay: float = 0.0,
        epochs: int = 200,
        patience: int = 10,
        batch_size: int = 256,
        device: str = "auto",
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            epochs=epochs,
            patience=patience,
            batch_size=batch_size,
            device=device,
            seed=seed,
            progress=progress,
        )
        self.hidden, self.latent, self.dropout, self.gamma = hidden, latent, dropout, gamma
        self.encoder_passes, self.decoder_passes = encoder_passes, decoder_passes

    @property
    def hyperparameters(self) -> dict[str, HyperValue]:
        """Layer sizes, input dropout, KL weight per item, passes, then training settings."""
        return {
            "hidden": self.hidden,
            "latent": self.latent,
            "dropout": self.dropout,
            "gamma": self.gamma,
            "encoder_passes": self.encoder_passes,
            "decoder_passes": self.decoder_passes,
            **self._training_hyperparameters(),
        }

    def _network(self, n_items: int) -> RecVAENetwork:
        return RecVAENetwork(n_items, self.hidden, self.latent, self.gamma)

    def _epoch_runner(self, network: RecVAENetwork, rng: np.random.Generator) -> EpochRunner:
        encoder = adamw(network.encoder.parameters(), self.learning_rate, self.weight_decay)
        decoder = adamw(network.decoder.parameters(), self.learning_rate, self.weight_decay)

        def run_epoch(epoch: int) -> float:
            for _ in range(self.encoder_passes):
                self._pass(network, encoder, rng, train_encoder=True)
            network.update_prior()
            losses = [
                self._pass(network, decoder, rng, train_encoder=False)
                for _ in range(self.decoder_passes)
            ]
            return float(np.mean(losses))

        return run_epoch

    def _pass(
        self,
        network: RecVAENetwork,
        optimizer: torch.optim.Optimizer,
        rng: np.random.Generator,
        *,
        train_encoder: bool,
    ) -> float:
        """One pass over the users training the encoder (with input dropout) or the decoder."""
        dropout = self.dropout if train_encoder else 0.0
        device = next(network.parameters()).device
        losses = []
        for users in self._user_batches(rng):
            rows = dense_rows(self.user_items, users, device)
            loss = network.loss(rows, dropout, train_encoder)
            network.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return float(np.mean(losses))
