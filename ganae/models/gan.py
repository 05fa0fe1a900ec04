"""GAN: a generator G(z) and a discriminator / critic D(x) playing min_G max_D V(D, G).

    V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]        (Goodfellow et al. 2014)

Each iteration does n_critic D updates, then n_gen G updates. The loss (minimax, ns, ls, wgan, hinge), the
penalties (WGAN-GP, R1, R2, clipping), spectral norm and the tricks (label smoothing, instance noise, EMA,
minibatch std, feature matching, dropout in D, AC-GAN) are switches of the run config.

With `model.gan_init = "ae"`, G starts from the decoder of an autoencoder pretrained on the data (its code is
batch-standardised so that it matches the N(0, I) prior), instead of from random weights.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .. import device as device_mod, nets, objectives, tricks
from ..config import RunConfig
from .common import Family, StepContext, critic_step, generator_step, make_optimizer


class GAN(Family):
    parts = ("d", "g")
    generative = True

    def __init__(self, cfg: RunConfig, shape: tuple[int, ...], n_classes: int = 0):
        super().__init__(cfg)
        m, o, t, p = cfg.model, cfg.objective, cfg.tricks, cfg.optim
        self.shape = tuple(shape)
        self.n_classes = n_classes if t.ac else 0
        g_net = nets.decoder(m.latent_dim + self.n_classes, self.shape, cfg.arch, m.g_hidden, m.g_layers,
                             m.channels, m.activation)
        self.g = nets.Generator(g_net, m.latent_dim, self.n_classes)
        body, feat = nets.body(self.shape, cfg.arch, m.d_hidden, m.d_layers, m.channels, m.d_activation,
                               dropout=t.d_dropout)
        self.d = nets.Critic(body, feat, self.n_classes, minibatch_std=t.minibatch_std)
        if o.spectral_norm in ("d", "dg"):
            tricks.apply_spectral_norm(self.d)
        if o.spectral_norm == "dg":
            tricks.apply_spectral_norm(self.g)
        self.g_ema = tricks.make_ema(self.g) if t.ema else None
        self.optimizers = {"d": make_optimizer(p.d_opt, self.d.parameters(), p.d_lr, p),
                           "g": make_optimizer(p.g_opt, self.g.parameters(), p.g_lr, p)}
        self.pretrained_state: dict[str, torch.Tensor] | None = None   # G's weights right after AE pretraining

    # ---- sampling ----------------------------------------------------------------------------
    def sample_classes(self, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor | None:
        if not self.n_classes:
            return None
        return torch.randint(self.n_classes, (n,), generator=generator, device=device)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None, ema: bool = True) -> torch.Tensor:
        """Samples for display and metrics: from the EMA generator when there is one, in eval mode."""
        g = self.g_ema if (ema and self.g_ema is not None) else self.g
        was = g.training
        g.eval()
        try:
            return g(z, y)
        finally:
            g.train(was)

    # ---- one iteration -----------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor, part: str, ctx: StepContext) -> dict[str, torch.Tensor]:
        cfg, t = self.cfg, self.cfg.tricks
        out: dict[str, torch.Tensor] = {}
        if part in ("both", "d"):
            for k in range(cfg.optim.n_critic):
                real, real_y = (x, y) if k == 0 else ctx.batch()
                # (1) Update D: push D(x) up on real data and D(G(z)) down on generated data
                z = self.prior(real.shape[0], ctx.generator, real.device)
                fake_y = self.sample_classes(real.shape[0], ctx.generator, real.device)
                with torch.no_grad():
                    fake = self.g(z, fake_y)
                extra = None
                if self.n_classes:
                    def extra(real_out, fake_out, real_y=real_y, fake_y=fake_y):
                        # AC-GAN: D also names the class of real and generated examples
                        return t.ac_weight * (objectives.ac_loss(real_out[2], real_y)
                                              + objectives.ac_loss(fake_out[2], fake_y))
                out.update(critic_step(self.d, self.optimizers["d"], real, fake, cfg, ctx, extra))
        if part in ("both", "g"):
            for _ in range(cfg.optim.n_gen):
                # (2) Update G: make D(G(z)) look real (or match D's features of real data)
                n = x.shape[0]
                z = self.prior(n, ctx.generator, x.device)
                fake_y = self.sample_classes(n, ctx.generator, x.device)
                fake = self.g(z, fake_y)
                sigma = tricks.instance_noise_sigma(t.instance_noise, ctx.step, t.instance_noise_steps)
                logits, f_fake, aux = self.d.forward_all(tricks.add_instance_noise(fake, sigma, ctx.generator))
                if t.feature_matching:
                    with torch.no_grad():
                        f_real = self.d.features(tricks.add_instance_noise(x, sigma, ctx.generator))
                    loss = objectives.feature_matching(f_real, f_fake)
                else:
                    loss = objectives.g_loss(cfg.objective.loss, logits)
                if self.n_classes:
                    loss = loss + t.ac_weight * objectives.ac_loss(aux, fake_y)
                out["grad_g"] = generator_step(self.optimizers["g"], loss)
                out["loss_g"] = loss.detach()
                if self.g_ema is not None:
                    tricks.ema_update(self.g_ema, self.g, t.ema)
        return out

    # ---- AE-pretrained generator -------------------------------------------------------------
    def prepare(self, ctx: StepContext) -> dict[str, float]:
        if self.cfg.model.gan_init != "ae":
            return {}
        return self._pretrain_from_autoencoder(ctx)

    def _pretrain_from_autoencoder(self, ctx: StepContext) -> dict[str, float]:
        """Train encoder + a decoder shaped like G to reconstruct the data, then copy the decoder into G.

        The code passes through BatchNorm without affine parameters, so over a batch it has zero mean and unit
        variance per dimension -- roughly the N(0, I) that G will be fed afterwards.
        """
        m, cfg = self.cfg.model, self.cfg   # a separate optimiser: G's own starts fresh for the game
        with device_mod.seeded_init(cfg.train.seed + 1):   # the encoder's init: from the run's seed, too
            body, feat = nets.body(self.shape, cfg.arch, m.d_hidden, m.d_layers, m.channels, m.d_activation)
            encoder = nn.Sequential(body, nn.Linear(feat, m.latent_dim), nn.BatchNorm1d(m.latent_dim, affine=False))
        encoder.to(next(self.g.parameters()).device)
        decoder = self.g  # train G's own weights as the decoder: afterwards they simply stay
        opt = torch.optim.Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=self.cfg.optim.g_lr)
        y_none = None
        loss = torch.zeros(())
        for _ in range(m.pretrain_steps):
            x, y = ctx.batch()
            y_cond = y if self.n_classes else y_none
            x_hat = decoder(encoder(x), y_cond)
            loss = F.mse_loss(x_hat, x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        self.pretrained_state = {k: v.detach().clone() for k, v in self.g.state_dict().items()}
        if self.g_ema is not None:
            self.g_ema.load_state_dict(self.g.state_dict())
        return {"pretrain_mse": float(loss.detach())}
