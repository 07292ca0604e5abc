"""Generator effectiveness, the analogue of Table 1 of Zhao et al. (AAAI 2020): MAP and NDCG@40 of recommendations
against the logs, as relative difference to the logs' own figures.

On the public files, for every clicked item of the held-out users (with its state: the user's earlier pages):

* **Logs**: the logging recommender's page ranked first (its items in random order, the expectation taken exactly)
  and the rest of the catalogue after it;
* **Popularity**: items by their click count among the training users;
* **GRU4Rec-style**: a GRU over the state and a softmax over the catalogue, trained with cross-entropy on the logged
  items of the training users (a supervised next-item model in the manner of Hidasi et al., ICLR 2016);
* **RecSimu G**: items by their distance to ``G(s)`` (nearest first), from a bundle fitted on the training users.

MAP is the mean reciprocal rank of the clicked item (one relevant item per state) and NDCG@40 its discounted gain.
The relative difference of a recommender is ``|m - m_logs| / m_logs``, as in the paper's table.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from recsim_gym.threads import cpu_threads
from recsim_gym.user_models.recsimu.data import Examples
from recsim_gym.user_models.recsimu.experiments import Prepared
from recsim_gym.user_models.recsimu.metrics import map_ndcg
from recsim_gym.user_models.recsimu.model import HistoryEncoder, RecSimuConfig


def logs_reference(prep: Prepared, ex: Examples, k: int = 40) -> dict[str, float]:
    """MAP and NDCG@k of the logged pages, the clicked item at a uniformly random position of its page."""
    steps = prep.steps
    sizes = np.bincount(steps.page, minlength=steps.n_steps)[steps.page[ex.step]]  # items on each example's page
    rr, gain = [], []
    for m in sizes:
        pos = np.arange(1, m + 1)
        rr.append(float((1.0 / pos).mean()))
        gain.append(float(np.where(pos <= k, 1.0 / np.log2(pos + 1.0), 0.0).mean()))
    return {"map": float(np.mean(rr)), f"ndcg@{k}": float(np.mean(gain))}


class NextItemGRU(nn.Module):
    """GRU over the state, then a linear layer to one logit per item."""

    def __init__(self, c: RecSimuConfig, emb: torch.Tensor) -> None:
        super().__init__()
        self.item_embedding = nn.Parameter(emb.clone())
        self.encoder = HistoryEncoder(c.item_dim, c.feedback_dim, c.n_feedback, c.hidden)
        self.out = nn.Linear(c.hidden, c.n_items)

    def forward(self, hi: torch.Tensor, hf: torch.Tensor) -> torch.Tensor:
        e = self.item_embedding[hi.clamp(min=0)] * (hi >= 0).unsqueeze(-1).float()
        return self.out(self.encoder(e, hf, hi >= 0))


@cpu_threads()
def train_next_item(prep: Prepared, seed: int = 0, steps: int = 400, batch: int = 500, lr: float = 1e-3) -> NextItemGRU:
    """The GRU4Rec-style reference, selected on the validation users' MAP of clicked items."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train, val = prep.splits["train"], prep.splits["val"]
    val = val.subset(np.flatnonzero(val.positive))
    model = NextItemGRU(prep.model_config(), torch.as_tensor(prep.embeddings))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hi, hf, it = (torch.as_tensor(a) for a in (train.hist_item, train.hist_fb, train.item))
    vhi, vhf = torch.as_tensor(val.hist_item), torch.as_tensor(val.hist_fb)
    best, best_state = -1.0, None
    for i in range(1, steps + 1):
        idx = torch.as_tensor(rng.integers(0, len(train), size=min(batch, len(train))))
        loss = nn.functional.cross_entropy(model(hi[idx], hf[idx]), it[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i % 20 == 0 or i == steps:
            with torch.no_grad():
                m = map_ndcg(model(vhi, vhf).numpy(), val.item)["map"]
            if math.isfinite(m) and m > best:
                best, best_state = m, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval()


def generator_table(prep: Prepared, generator: Any, seed: int = 0, k: int = 40) -> dict[str, dict[str, float]]:
    """Rows ``{"logs", "popularity", "gru4rec", "recsimu"}`` with MAP, NDCG@k and their relative differences.

    Args:
        prep: a log prepared with ``protocol="users"``, ``fit_split="train"`` (the held-out users are its test set).
        generator: the RecSimu generator fitted on the same training users (e.g. from ``recsimu-<dataset>-train``).
    """
    test = prep.splits["test"]
    test = test.subset(np.flatnonzero(test.positive))
    hi, hf = torch.as_tensor(test.hist_item), torch.as_tensor(test.hist_fb)
    train = prep.splits["train"]
    clicks = np.bincount(train.item[train.positive], minlength=prep.steps.n_items).astype(np.float64)
    rows = {"logs": logs_reference(prep, test, k)}
    rows["popularity"] = map_ndcg(np.broadcast_to(clicks, (len(test), clicks.size)), test.item, k)
    next_item = train_next_item(prep, seed)
    with torch.no_grad():
        rows["gru4rec"] = map_ndcg(next_item(hi, hf).numpy(), test.item, k)
        rows["recsimu"] = map_ndcg(generator.rank_items(hi, hf).numpy(), test.item, k)
    ref = rows["logs"]
    for name, r in rows.items():
        if name != "logs":
            r.update({f"{m}_rel_diff": abs(r[m] - ref[m]) / ref[m] for m in ("map", f"ndcg@{k}")})
    for r in rows.values():
        r["n"] = len(test)
    return rows
