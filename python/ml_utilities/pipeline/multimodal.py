"""Multimodal classification: audio feature vectors fused with text (lyrics, tags, descriptions).

Text is turned into numbers here, from the training rows only, without downloading anything:
TF-IDF (word 1-2-grams) reduced by truncated SVD (latent semantic analysis). Audio features are
standardised. Three fusions:

``early_fusion``
    Concatenate the two blocks and train one ModelManager model on them (``model`` config,
    default scikit-learn logistic regression).
``late_fusion``
    One model per modality; the fused prediction is the normalised product of their class
    probabilities (each modality rules out what it can tell apart).
``transformer_fusion``
    A small PyTorch transformer trained here: the audio vector is cut into ``audio_tokens``
    tokens and the text vector into ``text_tokens`` tokens, each projected to ``hidden_size``
    with a learned modality embedding; ``num_layers`` encoder layers let the tokens of both
    modalities attend to each other; the mean token feeds a linear classifier. Trained with
    AdamW and early stopping on the validation split (seeded: the same data gives the same
    weights on CPU).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from .errors import ParameterError

__all__ = ["MODEL_TYPES", "MultimodalModel", "train_multimodal"]

logger = logging.getLogger(__name__)

MODEL_TYPES = ("early_fusion", "late_fusion", "transformer_fusion")
_OPTIONS = (
    "validation_split",
    "seed",
    "text_max_features",
    "text_components",
    "model",
    "epochs",
    "hidden_size",
    "num_layers",
    "num_heads",
    "audio_tokens",
    "text_tokens",
    "learning_rate",
    "batch_size",
    "patience",
    "dropout",
)


def _audio_matrix(audio: Any) -> np.ndarray:
    if hasattr(audio, "values") and hasattr(audio, "columns") and hasattr(audio, "ids"):
        audio = audio.values  # TrackFeatures
    if isinstance(audio, pd.DataFrame):
        audio = audio.select_dtypes("number").to_numpy()
    arr = np.asarray(audio, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ParameterError(
            f"audio_features has shape {arr.shape}: expected (n_clips, n_features)"
        )
    if not np.all(np.isfinite(arr)):
        raise ParameterError("audio_features holds NaN or inf")
    return arr


class TextVectorizer:
    """TF-IDF then truncated SVD, fitted on training texts (or a numeric matrix, scaled)."""

    def __init__(self, max_features: int, components: int, seed: int) -> None:
        self.max_features = max_features
        self.components = components
        self.seed = seed

    def fit_transform(self, text: Any) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import StandardScaler

        self.is_text_ = _is_text(text)
        if not self.is_text_:
            self.scaler_ = StandardScaler()
            return self.scaler_.fit_transform(np.asarray(text, dtype=np.float64))
        self.tfidf_ = TfidfVectorizer(
            max_features=self.max_features, ngram_range=(1, 2), sublinear_tf=True
        )
        m = self.tfidf_.fit_transform(list(text))
        k = max(1, min(self.components, m.shape[1] - 1, m.shape[0] - 1))
        self.svd_ = TruncatedSVD(n_components=k, random_state=self.seed)
        return self.svd_.fit_transform(m)

    def transform(self, text: Any) -> np.ndarray:
        if not self.is_text_:
            return self.scaler_.transform(np.asarray(text, dtype=np.float64))
        return self.svd_.transform(self.tfidf_.transform(list(text)))


def _is_text(text: Any) -> bool:
    if isinstance(text, (pd.Series, list, tuple, np.ndarray)):
        arr = np.asarray(text, dtype=object)
        if arr.ndim == 1 and all(isinstance(t, str) for t in arr):
            return True
        if arr.ndim == 2:
            return False
    raise ParameterError(
        "text_features must be a list of strings (lyrics, tags...) or a 2-D numeric matrix"
    )


class MultimodalModel:
    """A fitted audio + text classifier (see the module docstring)."""

    def __init__(
        self,
        model_type: str,
        audio_scaler: Any,
        text: TextVectorizer,
        classes: list[Any],
        metrics: dict[str, Any],
        parts: dict[str, Any],
    ) -> None:
        self.model_type = model_type
        self.audio_scaler = audio_scaler
        self.text = text
        self.classes = classes
        self.metrics = metrics
        self.parts = parts

    def _blocks(self, audio: Any, text: Any) -> tuple[np.ndarray, np.ndarray]:
        a = self.audio_scaler.transform(_audio_matrix(audio))
        t = self.text.transform(text)
        if len(a) != len(t):
            raise ParameterError(f"{len(a)} audio rows but {len(t)} texts")
        return a, t

    def predict_proba(self, audio_features: Any, text_features: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, columns in the order of :attr:`classes`."""
        a, t = self._blocks(audio_features, text_features)
        if self.model_type == "early_fusion":
            return self.parts["model"].predict_proba(np.hstack([a, t]))
        if self.model_type == "late_fusion":
            # product of the experts' probabilities (geometric pooling): each modality
            # vetoes the classes it rules out, which an average would only halve
            logp = np.log(np.clip(self.parts["audio"].predict_proba(a), 1e-9, 1)) + np.log(
                np.clip(self.parts["text"].predict_proba(t), 1e-9, 1)
            )
            p = np.exp(logp - logp.max(axis=1, keepdims=True))
            return p / p.sum(axis=1, keepdims=True)
        import torch

        net = self.parts["net"]
        net.eval()
        with torch.no_grad():
            logits = net(
                torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(t, dtype=torch.float32)
            )
            return torch.softmax(logits, dim=1).numpy()

    def predict(self, audio_features: Any, text_features: Any) -> np.ndarray:
        """Predicted labels (as given in training)."""
        idx = np.argmax(self.predict_proba(audio_features, text_features), axis=1)
        return np.asarray(self.classes, dtype=object)[idx]


def _fusion_net(n_audio: int, n_text: int, n_classes: int, opts: dict[str, Any]) -> Any:
    import torch
    from torch import nn

    hidden, a_tok, t_tok = opts["hidden_size"], opts["audio_tokens"], opts["text_tokens"]

    class FusionTransformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a_tok, self.t_tok = a_tok, t_tok
            self.a_pad = (-n_audio) % a_tok
            self.t_pad = (-n_text) % t_tok
            self.a_proj = nn.Linear((n_audio + self.a_pad) // a_tok, hidden)
            self.t_proj = nn.Linear((n_text + self.t_pad) // t_tok, hidden)
            self.modality = nn.Parameter(torch.zeros(2, hidden))
            self.position = nn.Parameter(torch.zeros(a_tok + t_tok, hidden))
            nn.init.normal_(self.position, std=0.02)
            layer = nn.TransformerEncoderLayer(
                hidden,
                opts["num_heads"],
                dim_feedforward=2 * hidden,
                dropout=opts["dropout"],
                batch_first=True,
                norm_first=True,
                activation="gelu",
            )
            self.encoder = nn.TransformerEncoder(
                layer, opts["num_layers"], enable_nested_tensor=False
            )
            self.norm = nn.LayerNorm(hidden)
            self.classifier = nn.Linear(hidden, n_classes)

        def forward(self, audio: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
            a = nn.functional.pad(audio, (0, self.a_pad)).reshape(len(audio), self.a_tok, -1)
            t = nn.functional.pad(text, (0, self.t_pad)).reshape(len(text), self.t_tok, -1)
            tokens = torch.cat(
                [self.a_proj(a) + self.modality[0], self.t_proj(t) + self.modality[1]], dim=1
            )
            h = self.encoder(tokens + self.position)
            return self.classifier(self.norm(h.mean(dim=1)))

    return FusionTransformer()


def _train_net(
    a: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    a_val: np.ndarray,
    t_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    opts: dict[str, Any],
) -> tuple[Any, dict]:
    import torch

    threads = torch.get_num_threads()
    # a network this small gains nothing from intra-op threads and loses a lot to contention
    torch.set_num_threads(1)
    try:
        return _train_net_1thread(a, t, y, a_val, t_val, y_val, n_classes, opts)
    finally:
        torch.set_num_threads(threads)


def _train_net_1thread(
    a: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    a_val: np.ndarray,
    t_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    opts: dict[str, Any],
) -> tuple[Any, dict]:
    import torch

    torch.manual_seed(opts["seed"])
    net = _fusion_net(a.shape[1], t.shape[1], n_classes, opts)
    optim = torch.optim.AdamW(net.parameters(), lr=opts["learning_rate"], weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    at, tt, yt = (
        torch.as_tensor(a, dtype=torch.float32),
        torch.as_tensor(t, dtype=torch.float32),
        torch.as_tensor(y, dtype=torch.long),
    )
    av, tv, yv = (
        torch.as_tensor(a_val, dtype=torch.float32),
        torch.as_tensor(t_val, dtype=torch.float32),
        torch.as_tensor(y_val),
    )
    gen = torch.Generator().manual_seed(opts["seed"])
    best, best_state, best_epoch, history = float("inf"), None, 0, []
    for epoch in range(opts["epochs"]):
        net.train()
        perm = torch.randperm(len(yt), generator=gen)
        for start in range(0, len(yt), opts["batch_size"]):
            idx = perm[start : start + opts["batch_size"]]
            optim.zero_grad()
            loss = loss_fn(net(at[idx], tt[idx]), yt[idx])
            loss.backward()
            optim.step()
        net.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(net(av, tv), yv))
        history.append(val_loss)
        if val_loss < best - 1e-6:
            best, best_epoch = val_loss, epoch
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        elif epoch - best_epoch >= opts["patience"]:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return net, {"history": history, "best_epoch": best_epoch}


def train_multimodal(
    audio_features: Any,
    text_features: Any,
    emotion_labels: Any,
    model_type: str = "transformer_fusion",
    *,
    manager: Any = None,
    **options: Any,
) -> MultimodalModel:
    """Train a classifier on audio features and text; see the module docstring.

    Parameters
    ----------
    audio_features : array (n, d), DataFrame or TrackFeatures
        One summary vector per clip (e.g. from ``extract_catalog``).
    text_features : list of str, or array (n, k)
        Lyrics/tags/descriptions (TF-IDF + SVD fitted on the training rows) or a numeric matrix.
    emotion_labels : sequence (n,)
    model_type : {"early_fusion", "late_fusion", "transformer_fusion"}
    options :
        ``validation_split`` (0.2, stratified), ``seed`` (0), ``text_max_features`` (5000),
        ``text_components`` (64), ``model`` (ModelManager config for the fusions that use one;
        default ``{"framework": "sklearn", "architecture": "linear"}``), and for the
        transformer ``epochs`` (60), ``hidden_size`` (32), ``num_layers`` (2), ``num_heads``
        (4), ``audio_tokens`` (8), ``text_tokens`` (4), ``learning_rate`` (3e-3),
        ``batch_size`` (32), ``patience`` (10), ``dropout`` (0.1).

    Returns
    -------
    MultimodalModel
        ``metrics`` on the validation split: ``accuracy``, ``f1_weighted`` for the fused model
        and ``audio_only_accuracy`` / ``text_only_accuracy`` for late fusion.
    """
    from sklearn import metrics as skm
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if model_type not in MODEL_TYPES:
        raise ParameterError(f"model_type={model_type!r}: expected one of {list(MODEL_TYPES)}")
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ParameterError(f"unknown option(s) {unknown}; accepted: {list(_OPTIONS)}")
    opts = {
        "validation_split": 0.2,
        "seed": 0,
        "text_max_features": 5000,
        "text_components": 64,
        "model": {"framework": "sklearn", "architecture": "linear"},
        "epochs": 60,
        "hidden_size": 32,
        "num_layers": 2,
        "num_heads": 4,
        "audio_tokens": 8,
        "text_tokens": 4,
        "learning_rate": 3e-3,
        "batch_size": 32,
        "patience": 10,
        "dropout": 0.1,
        **options,
    }
    audio = _audio_matrix(audio_features)
    labels = np.asarray(emotion_labels, dtype=object)
    n = len(audio)
    if len(labels) != n:
        raise ParameterError(f"{n} audio rows but {len(labels)} labels")
    text_list = text_features
    if _is_text(text_features):
        text_list = list(text_features)
    if len(text_list) != n:
        raise ParameterError(f"{n} audio rows but {len(text_list)} texts")
    classes = sorted(set(labels.tolist()), key=str)
    if len(classes) < 2:
        raise ParameterError(f"emotion_labels hold {classes}: need at least 2 classes")
    codes = np.array([classes.index(v) for v in labels.tolist()])
    idx = np.arange(n)
    counts = np.bincount(codes)
    tr, va = train_test_split(
        idx,
        test_size=opts["validation_split"],
        random_state=opts["seed"],
        stratify=codes if counts.min() >= 2 else None,
    )
    start = time.perf_counter()
    scaler = StandardScaler().fit(audio[tr])
    text = TextVectorizer(opts["text_max_features"], opts["text_components"], opts["seed"])

    def take(obj: Any, rows: np.ndarray) -> Any:
        return [obj[i] for i in rows] if isinstance(obj, list) else np.asarray(obj)[rows]

    t_tr = text.fit_transform(take(text_list, tr))
    t_va = text.transform(take(text_list, va))
    a_tr, a_va = scaler.transform(audio[tr]), scaler.transform(audio[va])
    metrics: dict[str, Any] = {}
    parts: dict[str, Any] = {}
    model = MultimodalModel(model_type, scaler, text, classes, metrics, parts)
    if model_type in ("early_fusion", "late_fusion"):
        if manager is None:
            from ..models import ModelManager

            manager = ModelManager()
        cfg = dict(opts["model"])
        cfg.setdefault("seed", opts["seed"])
        y_tr = np.asarray([classes[c] for c in codes[tr]], dtype=object)
        if model_type == "early_fusion":
            parts["model"] = manager.train_model_sync(np.hstack([a_tr, t_tr]), y_tr, cfg, 0.15)
        else:
            parts["audio"] = manager.train_model_sync(a_tr, y_tr, cfg, 0.15)
            parts["text"] = manager.train_model_sync(t_tr, y_tr, cfg, 0.15)
            for name, x in (("audio", a_va), ("text", t_va)):
                p = np.argmax(parts[name].predict_proba(x), axis=1)
                metrics[f"{name}_only_accuracy"] = float(np.mean(p == codes[va]))
            # ModelManager orders probability columns by its own class order
        for part in parts.values():
            if [str(c) for c in part.classes] != [str(c) for c in classes]:
                raise ParameterError("the training split lacks some classes; give more rows")
    else:
        net, training = _train_net(a_tr, t_tr, codes[tr], a_va, t_va, codes[va], len(classes), opts)
        parts["net"] = net
        metrics["training"] = training
    proba = model.predict_proba(audio[va], take(text_list, va))
    pred = np.argmax(proba, axis=1)
    metrics.update(
        accuracy=float(skm.accuracy_score(codes[va], pred)),
        f1_weighted=float(skm.f1_score(codes[va], pred, average="weighted", zero_division=0)),
        n_train=int(len(tr)),
        n_validation=int(len(va)),
        duration_s=round(time.perf_counter() - start, 4),
    )
    return model
