"""Multimodal classification: audio feature vectors fused with text (lyrics, tags, descriptions).

Text is turned into numbers here, from the training rows only, without downloading anything:
TF-IDF (word 1-2-grams) reduced by truncated SVD (latent semantic analysis). The text may also
be a table with a ``text`` column and numeric columns (the lyrics features of
:func:`~ml_utilities.pipeline.emotion.extract_lyrics_features`: sentiment, valence, arousal...),
which are standardised and appended to the SVD vector, or a numeric matrix alone. Audio
features are standardised. Three fusions:

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

Registering and serving
-----------------------
A :class:`MultimodalModel` becomes a :class:`~ml_utilities.models.ModelHandle` of framework
``multimodal`` (:meth:`MultimodalModel.to_handle`, or :meth:`MultimodalModel.register` into a
:class:`~ml_utilities.models.ModelRegistry`), held by :class:`MultimodalAdapter`. Its numeric
input is the matrix ``[audio block | text block]``: the standardised audio features then the
text vector, named ``audio:<column>`` and ``text:<name>`` (:attr:`MultimodalModel.feature_names`).
The adapter's :meth:`~MultimodalAdapter.prepare_inputs` turns the raw named inputs
(:attr:`~MultimodalAdapter.input_names`: ``audio_features`` rows and ``text`` strings) into that
matrix, which is what :class:`~ml_utilities.serving.PredictionService` does with a request
whose features are a dict of named inputs. Every file is a safe format: the network's weights
in safetensors, the TF-IDF vocabulary in JSON, IDF weights, SVD components and scalers in
``.npz`` (read with ``allow_pickle=False``), the scikit-learn members of early and late fusion
through their adapters (skops); loading a model never runs code from its files.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..models.adapters import register_adapter
from ..models.adapters.base import Adapter, OnnxExport
from .errors import ParameterError

__all__ = [
    "INPUT_NAMES",
    "MODEL_TYPES",
    "MultimodalAdapter",
    "MultimodalModel",
    "TextVectorizer",
    "train_multimodal",
]

logger = logging.getLogger(__name__)

MODEL_TYPES = ("early_fusion", "late_fusion", "transformer_fusion")
#: the named inputs of a served multimodal model (:meth:`MultimodalAdapter.prepare_inputs`)
INPUT_NAMES = ("audio_features", "text")
#: layout of a saved multimodal model (``multimodal.json``)
SAVE_FORMAT = 1
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
#: the options the transformer's shape depends on (kept to rebuild it on load)
_NET_OPTIONS = ("hidden_size", "num_layers", "num_heads", "audio_tokens", "text_tokens", "dropout")
#: rows of the training inputs kept as the handle's reference sample
_REFERENCE_ROWS = 2000


def _audio_matrix(audio: Any, columns: list[str] | None = None) -> np.ndarray:
    """``(n, d)`` float64 audio features; a DataFrame's numeric columns (in ``columns``'
    order when given: the training's)."""
    if hasattr(audio, "values") and hasattr(audio, "columns") and hasattr(audio, "ids"):
        audio = pd.DataFrame(audio.values, columns=list(audio.columns))  # TrackFeatures
    if isinstance(audio, pd.DataFrame):
        if columns is not None and not all(c.isdigit() for c in columns):
            missing = [c for c in columns if c not in audio.columns]
            if missing:
                raise ParameterError(
                    f"audio_features lacks the column(s) {missing[:10]} the model was trained on"
                )
            audio = audio[columns]
        audio = audio.select_dtypes("number").to_numpy()
    try:
        arr = np.asarray(audio, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"audio_features are not numbers ({err})") from None
    if arr.ndim == 1 and columns is not None and arr.size == len(columns):
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ParameterError(
            f"audio_features has shape {arr.shape}: expected (n_clips, n_features)"
        )
    if columns is not None and arr.shape[1] != len(columns):
        raise ParameterError(
            f"audio_features has {arr.shape[1]} columns: the model was trained on {len(columns)}"
        )
    if not np.all(np.isfinite(arr)):
        raise ParameterError("audio_features holds NaN or inf")
    return arr


def _audio_columns(audio: Any, width: int) -> list[str]:
    if hasattr(audio, "values") and hasattr(audio, "columns") and hasattr(audio, "ids"):
        return [str(c) for c in audio.columns]
    if isinstance(audio, pd.DataFrame):
        return [str(c) for c in audio.select_dtypes("number").columns]
    return [str(i) for i in range(width)]


def _text_kind(text: Any) -> str:
    """``"text"`` (strings), ``"frame"`` (a table with a ``text`` column) or ``"numeric"``."""
    if isinstance(text, pd.DataFrame):
        if "text" in text.columns:
            return "frame"
        return "numeric"
    if isinstance(text, (pd.Series, list, tuple, np.ndarray)):
        arr = np.asarray(text, dtype=object)
        if arr.ndim == 1 and all(isinstance(t, str) for t in arr):
            return "text"
        if arr.ndim == 2:
            return "numeric"
    raise ParameterError(
        "text_features must be a list of strings (lyrics, tags...), a DataFrame with a 'text' "
        "column (extract_lyrics_features) or a 2-D numeric matrix"
    )


def _is_text(text: Any) -> bool:
    return _text_kind(text) == "text"


def _numbers(value: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"{what} are not numbers ({err})") from None
    if arr.ndim != 2:
        raise ParameterError(f"{what} has shape {arr.shape}: expected (n, n_features)")
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{what} hold NaN or inf")
    return arr


def _scaler_arrays(scaler: Any) -> dict[str, np.ndarray]:
    return {
        "mean": np.asarray(scaler.mean_, dtype=np.float64),
        "scale": np.asarray(scaler.scale_, dtype=np.float64),
        "var": np.asarray(scaler.var_, dtype=np.float64),
        "n_samples_seen": np.asarray(scaler.n_samples_seen_),
    }


def _scaler_from(arrays: dict[str, np.ndarray]) -> Any:
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    scaler.mean_ = arrays["mean"]
    scaler.scale_ = arrays["scale"]
    scaler.var_ = arrays["var"]
    seen = arrays["n_samples_seen"]
    scaler.n_samples_seen_ = seen.item() if seen.ndim == 0 else seen
    scaler.n_features_in_ = int(arrays["mean"].shape[0])
    return scaler


class TextVectorizer:
    """Fitted on the training rows: TF-IDF then truncated SVD of texts; a numeric matrix
    standardised; or both for a table with a ``text`` column and numeric columns."""

    def __init__(self, max_features: int, components: int, seed: int) -> None:
        self.max_features = max_features
        self.components = components
        self.seed = seed

    @property
    def is_text_(self) -> bool:
        return self.kind_ == "text"

    def _tfidf(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            max_features=self.max_features, ngram_range=(1, 2), sublinear_tf=True
        )

    def _fit_text(self, texts: list[str]) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD

        self.tfidf_ = self._tfidf()
        m = self.tfidf_.fit_transform(texts)
        k = max(1, min(self.components, m.shape[1] - 1, m.shape[0] - 1))
        self.svd_ = TruncatedSVD(n_components=k, random_state=self.seed)
        return self.svd_.fit_transform(m)

    def fit_transform(self, text: Any) -> np.ndarray:
        from sklearn.preprocessing import StandardScaler

        self.kind_ = _text_kind(text)
        self.columns_: list[str] = []
        if self.kind_ == "text":
            return self._fit_text(list(text))
        if self.kind_ == "numeric":
            if isinstance(text, pd.DataFrame):
                self.columns_ = [str(c) for c in text.columns]
            x = _numbers(text, "text_features")
            self.scaler_ = StandardScaler()
            return self.scaler_.fit_transform(x)
        texts = _texts(text["text"])
        numeric = text.drop(columns=["text"]).select_dtypes("number")
        self.columns_ = [str(c) for c in numeric.columns]
        z = self._fit_text(texts)
        if not self.columns_:
            return z
        self.scaler_ = StandardScaler()
        return np.hstack([z, self.scaler_.fit_transform(_numbers(numeric, "text_features"))])

    def transform(self, text: Any) -> np.ndarray:
        if self.kind_ == "numeric":
            if isinstance(text, pd.DataFrame) and self.columns_:
                text = _columns(text, self.columns_, "text_features")
            return self.scaler_.transform(_numbers(text, "text_features"))
        if self.kind_ == "text":
            if isinstance(text, pd.DataFrame) and "text" in text.columns:
                text = text["text"]
            return self.svd_.transform(self.tfidf_.transform(_texts(text)))
        if not isinstance(text, pd.DataFrame):
            text = self._lyrics_frame(_texts(text))
        z = self.svd_.transform(self.tfidf_.transform(_texts(text["text"])))
        if not self.columns_:
            return z
        numeric = _numbers(_columns(text, self.columns_, "text_features"), "text_features")
        return np.hstack([z, self.scaler_.transform(numeric)])

    def _lyrics_frame(self, texts: list[str]) -> pd.DataFrame:
        """The lyrics features of raw texts (a model trained on extract_lyrics_features)."""
        from .emotion import extract_lyrics_features_sync

        frame = extract_lyrics_features_sync(texts)
        missing = [c for c in self.columns_ if c not in frame.columns]
        if missing:
            raise ParameterError(
                f"the model's text block holds the column(s) {missing[:10]}, which raw texts do "
                "not give (an embedding?): pass the table of extract_lyrics_features instead"
            )
        return frame

    def feature_names(self) -> list[str]:
        """Names of the output columns: ``lsa_{i}`` (SVD components) then the numeric ones."""
        names = []
        if self.kind_ != "numeric":
            names = [f"lsa_{i}" for i in range(self.svd_.components_.shape[0])]
        if self.kind_ == "numeric" and not self.columns_:
            return [f"f{i}" for i in range(int(self.scaler_.mean_.shape[0]))]
        return names + list(self.columns_)

    # -- safe persistence -----
    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind_,
            "max_features": self.max_features,
            "components": self.components,
            "seed": self.seed,
            "columns": list(self.columns_),
        }

    def save(self, directory: Path) -> None:
        arrays: dict[str, np.ndarray] = {}
        if self.kind_ != "numeric":
            vocab = sorted(self.tfidf_.vocabulary_, key=self.tfidf_.vocabulary_.get)
            (directory / "text_vocabulary.json").write_text(json.dumps(vocab))
            arrays["idf"] = np.asarray(self.tfidf_.idf_, dtype=np.float64)
            for attr in ("components_", "explained_variance_", "explained_variance_ratio_"):
                arrays[f"svd_{attr.rstrip('_')}"] = np.asarray(getattr(self.svd_, attr))
            arrays["svd_singular_values"] = np.asarray(self.svd_.singular_values_)
        if hasattr(self, "scaler_"):
            arrays.update({f"scaler_{k}": v for k, v in _scaler_arrays(self.scaler_).items()})
        np.savez(directory / "text.npz", **arrays)

    @classmethod
    def load(cls, spec: dict[str, Any], directory: Path) -> TextVectorizer:
        from sklearn.decomposition import TruncatedSVD

        out = cls(spec["max_features"], spec["components"], spec["seed"])
        out.kind_ = spec["kind"]
        out.columns_ = list(spec["columns"])
        with np.load(directory / "text.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        if out.kind_ != "numeric":
            vocab = json.loads((directory / "text_vocabulary.json").read_text())
            if not (isinstance(vocab, list) and all(isinstance(t, str) for t in vocab)):
                raise ParameterError(f"{directory / 'text_vocabulary.json'} is not a term list")
            out.tfidf_ = out._tfidf()
            out.tfidf_.vocabulary_ = {t: i for i, t in enumerate(vocab)}
            out.tfidf_.idf_ = arrays["idf"]
            components = arrays["svd_components"]
            out.svd_ = TruncatedSVD(n_components=components.shape[0], random_state=out.seed)
            out.svd_.components_ = components
            out.svd_.explained_variance_ = arrays["svd_explained_variance"]
            out.svd_.explained_variance_ratio_ = arrays["svd_explained_variance_ratio"]
            out.svd_.singular_values_ = arrays["svd_singular_values"]
            out.svd_.n_features_in_ = int(components.shape[1])
        if "scaler_mean" in arrays:
            out.scaler_ = _scaler_from(
                {k[len("scaler_") :]: v for k, v in arrays.items() if k.startswith("scaler_")}
            )
        return out


def _texts(text: Any) -> list[str]:
    values = list(text.tolist() if isinstance(text, (pd.Series, np.ndarray)) else text)
    for i, t in enumerate(values):
        if not isinstance(t, str):
            raise ParameterError(f"text {i} is a {type(t).__name__} ({t!r:.60}): expected a string")
    return values


def _columns(frame: pd.DataFrame, columns: list[str], what: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ParameterError(f"{what} lacks the column(s) {missing[:10]} the model was trained on")
    return frame[columns]


class MultimodalModel:
    """A fitted audio + text classifier (see the module docstring).

    Attributes
    ----------
    model_type : str
    classes : list
        Labels, in the order of the probability columns.
    metrics : dict
        Validation metrics (see :func:`train_multimodal`).
    audio_columns : list of str
        The audio features' names (a DataFrame's numeric columns, else ``"0"``, ``"1"``...).
    feature_names : list of str
        Names of the prepared matrix's columns: ``audio:<column>`` then ``text:<name>``.
    """

    def __init__(
        self,
        model_type: str,
        audio_scaler: Any,
        text: TextVectorizer,
        classes: list[Any],
        metrics: dict[str, Any],
        parts: dict[str, Any],
        *,
        audio_columns: list[str] | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.model_type = model_type
        self.audio_scaler = audio_scaler
        self.text = text
        self.classes = classes
        self.metrics = metrics
        self.parts = parts
        n_audio = int(audio_scaler.mean_.shape[0])
        self.audio_columns = list(audio_columns or [str(i) for i in range(n_audio)])
        self.options = dict(options or {})
        #: provenance kept for :meth:`to_handle`: sha256 of the training data, the validation
        #: rows (prepared matrix, labels) and training rows for the reference sample
        self.fingerprint: str = ""
        self.holdout: tuple[np.ndarray, np.ndarray] | None = None
        self.reference: tuple[np.ndarray, np.ndarray] | None = None
        #: the registry name and version, once registered
        self.name: str | None = None
        self.version: int | None = None

    @property
    def n_audio(self) -> int:
        return int(self.audio_scaler.mean_.shape[0])

    @property
    def feature_names(self) -> list[str]:
        return [f"audio:{c}" for c in self.audio_columns] + [
            f"text:{n}" for n in self.text.feature_names()
        ]

    def _blocks(self, audio: Any, text: Any) -> tuple[np.ndarray, np.ndarray]:
        a = self.audio_scaler.transform(_audio_matrix(audio, self.audio_columns))
        t = self.text.transform(text)
        if len(a) != len(t):
            raise ParameterError(f"{len(a)} audio rows but {len(t)} texts")
        return a, t

    def transform(self, audio_features: Any, text_features: Any) -> np.ndarray:
        """The prepared matrix ``[standardised audio | text vector]`` (float32), the input of
        :meth:`predict_proba_matrix` and of the registered model."""
        a, t = self._blocks(audio_features, text_features)
        return np.ascontiguousarray(np.hstack([a, t]), dtype=np.float32)

    def predict_proba_matrix(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of prepared rows (:meth:`transform`)."""
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        n = self.n_audio
        return self._proba(x[:, :n], x[:, n:])

    def _proba(self, a: np.ndarray, t: np.ndarray) -> np.ndarray:
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

    def predict_proba(self, audio_features: Any, text_features: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, columns in the order of :attr:`classes`."""
        return self.predict_proba_matrix(self.transform(audio_features, text_features))

    def predict(self, audio_features: Any, text_features: Any) -> np.ndarray:
        """Predicted labels (as given in training)."""
        idx = np.argmax(self.predict_proba(audio_features, text_features), axis=1)
        return np.asarray(self.classes, dtype=object)[idx]

    # -- registry -----
    def to_handle(self, name: str | None = None) -> Any:
        """This model as a :class:`~ml_utilities.models.ModelHandle` of framework
        ``multimodal`` (held by :class:`MultimodalAdapter`), ready for
        ``ModelRegistry.register``; its features are the prepared matrix (:meth:`transform`),
        its held-out rows the validation split and its reference sample the training rows."""
        from ..models._data import LabelCodec
        from ..models.handle import ModelHandle

        adapter = MultimodalAdapter.from_model(self)
        metrics = {k: v for k, v in self.metrics.items() if k != "training"}
        training = dict(self.metrics.get("training") or {})
        training.update(seed=self.options.get("seed", 0), model_type=self.model_type)
        handle = ModelHandle(
            adapter,
            name=name or self.name or f"multimodal-{self.model_type}",
            task="classification",
            config={"framework": "multimodal", "architecture": self.model_type, **self.options},
            codec=LabelCodec(self.classes),
            metrics=metrics,
            training=training,
            signature={
                "inputs": {"dtype": "float32", "shape": [None, len(self.feature_names)]},
                "classes": LabelCodec(self.classes).classes,
            },
            fingerprint=self.fingerprint,
            holdout=self.holdout,
        )
        if self.reference is not None:
            x, y = self.reference
            handle.set_reference(x, y, seed=int(self.options.get("seed", 0)))
        return handle

    def register(
        self,
        registry: Any,
        name: str | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        aliases: list[str] | tuple[str, ...] = (),
    ) -> Any:
        """Register this model in ``registry`` (a :class:`~ml_utilities.models.ModelRegistry`)
        with its :attr:`feature_names` in the metadata; sets :attr:`name` and :attr:`version`
        and returns the :class:`~ml_utilities.models.ModelVersion`."""
        meta = {"feature_names": self.feature_names, "input_names": list(INPUT_NAMES)}
        meta.update(metadata or {})
        mv = registry.register(self.to_handle(name), metadata=meta, aliases=aliases)
        self.name, self.version = mv.name, mv.version
        return mv


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


def _align(audio: Any, text: Any, labels: Any) -> tuple[Any, Any, Any]:
    """Reorder ``text`` and ``labels`` by ``audio``'s index where all are indexed by the same
    track ids in another order (the tables of the emotion extractors)."""
    if not isinstance(audio, pd.DataFrame) or isinstance(audio.index, pd.RangeIndex):
        return audio, text, labels
    ids = audio.index
    for what, obj in (("text_features", text), ("emotion_labels", labels)):
        if not isinstance(obj, (pd.DataFrame, pd.Series)) or isinstance(obj.index, pd.RangeIndex):
            continue
        if obj.index.equals(ids):
            continue
        if not (obj.index.is_unique and ids.is_unique) or len(obj) != len(ids):
            continue  # positional, as given
        missing = ids.difference(obj.index)
        if len(missing):
            raise ParameterError(
                f"{what} has no row for the audio track id(s) {list(missing[:10])}"
            )
        if what == "text_features":
            text = obj.loc[ids]
        else:
            labels = obj.loc[ids]
    return audio, text, labels


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
        One summary vector per clip (e.g. from ``extract_catalog`` or
        ``extract_audio_emotion_features``; a DataFrame's numeric columns).
    text_features : list of str, DataFrame with a ``text`` column, or array (n, k)
        Lyrics/tags/descriptions (TF-IDF + SVD fitted on the training rows), the table of
        ``extract_lyrics_features`` (TF-IDF + SVD of ``text`` and its standardised numeric
        columns), or a numeric matrix. Tables indexed by the same track ids as
        ``audio_features`` (and a labels Series) are aligned on them.
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

    from ..models._data import fingerprint

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
    audio_features, text_features, emotion_labels = _align(
        audio_features, text_features, emotion_labels
    )
    audio = _audio_matrix(audio_features)
    audio_columns = _audio_columns(audio_features, audio.shape[1])
    labels = np.asarray(emotion_labels, dtype=object)
    n = len(audio)
    if len(labels) != n:
        raise ParameterError(f"{n} audio rows but {len(labels)} labels")
    kind = _text_kind(text_features)
    text_list = text_features
    if kind == "text":
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
        if isinstance(obj, list):
            return [obj[i] for i in rows]
        if isinstance(obj, (pd.DataFrame, pd.Series)):
            return obj.iloc[rows]
        return np.asarray(obj)[rows]

    t_tr = text.fit_transform(take(text_list, tr))
    t_va = text.transform(take(text_list, va))
    a_tr, a_va = scaler.transform(audio[tr]), scaler.transform(audio[va])
    metrics: dict[str, Any] = {}
    parts: dict[str, Any] = {}
    kept = {k: opts[k] for k in _OPTIONS if k != "model"}
    if model_type != "transformer_fusion":
        kept = {k: v for k, v in kept.items() if k not in _NET_OPTIONS}
        kept["model"] = dict(opts["model"])
    model = MultimodalModel(
        model_type,
        scaler,
        text,
        classes,
        metrics,
        parts,
        audio_columns=audio_columns,
        options=kept,
    )
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
    x_va = np.ascontiguousarray(np.hstack([a_va, t_va]), dtype=np.float32)
    proba = model.predict_proba_matrix(x_va)
    pred = np.argmax(proba, axis=1)
    metrics.update(
        accuracy=float(skm.accuracy_score(codes[va], pred)),
        f1_weighted=float(skm.f1_score(codes[va], pred, average="weighted", zero_division=0)),
        n_train=int(len(tr)),
        n_validation=int(len(va)),
        duration_s=round(time.perf_counter() - start, 4),
    )
    x_tr = np.ascontiguousarray(np.hstack([a_tr, t_tr]), dtype=np.float32)
    text_repr = (
        np.asarray([str(t) for t in take(text_list, idx)], dtype=object)
        if kind == "text"
        else np.asarray(text_list["text"] if kind == "frame" else text_list, dtype=object).astype(
            str
        )
    )
    model.fingerprint = fingerprint(audio, np.column_stack([text_repr.reshape(n, -1), labels]))
    # the labels as a plain array (ints stay ints: the handle's codec holds them as given)
    model.holdout = (x_va, np.asarray(labels[va].tolist()))
    keep = tr[:_REFERENCE_ROWS]
    model.reference = (x_tr[: len(keep)], np.asarray(labels[keep].tolist()))
    return model


# ------------------------------------------------------------------------------ the adapter
class MultimodalAdapter(Adapter):
    """A :class:`MultimodalModel` as a model of the registry (framework ``multimodal``).

    Its input is the prepared matrix ``[audio block | text block]`` (``input_shape``
    ``(n_audio + n_text,)``); :meth:`prepare_inputs` makes it from the named raw inputs
    :attr:`input_names`. ``hyperparameters`` holds the JSON description: ``audio_columns``,
    ``n_audio``, ``text`` (the vectorizer's kind, sizes and numeric columns), ``classes``,
    ``options`` (the training options, the transformer's shape among them) and
    ``feature_names``.
    """

    framework = "multimodal"
    architectures = MODEL_TYPES
    input_names = INPUT_NAMES
    onnx_exporter = ""

    def __init__(self, architecture: str, task: str, hyperparameters: dict[str, Any], **kw: Any):
        super().__init__(architecture, task, hyperparameters, **kw)
        self.model: MultimodalModel | None = None

    @classmethod
    def from_model(cls, model: MultimodalModel) -> MultimodalAdapter:
        desc = {
            "audio_columns": list(model.audio_columns),
            "n_audio": model.n_audio,
            "text": model.text.spec(),
            "classes": [str(c) for c in model.classes],
            "options": dict(model.options),
            "feature_names": model.feature_names,
        }
        adapter = cls(
            model.model_type,
            "classification",
            desc,
            n_classes=len(model.classes),
            input_shape=(len(model.feature_names),),
            seed=int(model.options.get("seed", 0)),
        )
        adapter.model = model
        return adapter

    @property
    def feature_names(self) -> list[str]:
        """``audio:<column>`` then ``text:<name>``: the prepared matrix's columns."""
        return list(self.hyperparameters["feature_names"])

    def _held(self) -> MultimodalModel:
        if self.model is None:
            raise ParameterError("this multimodal adapter holds no model (load it first)")
        return self.model

    def fit(self, x, y, x_val, y_val, *, patience):  # noqa: ANN001 - see Adapter.fit
        raise ParameterError(
            "a multimodal model is trained by DataPipeline.train_multimodal_model "
            "(ml_utilities.pipeline.multimodal.train_multimodal), not by ModelManager.train_model"
        )

    def prepare_inputs(self, inputs: dict[str, Any]) -> np.ndarray:
        """The prepared float32 matrix of named raw inputs: ``{"audio_features": rows of
        floats (or a DataFrame with the training's columns), "text": list of strings (or the
        table of extract_lyrics_features)}``.

        Raises
        ------
        ParameterError
            Missing or unknown names (named), rows of the wrong width, NaN, texts that are
            not strings, audio and text of different lengths.
        """
        if not isinstance(inputs, dict):
            raise ParameterError(f"inputs must be a dict of {list(INPUT_NAMES)}")
        missing = [k for k in INPUT_NAMES if k not in inputs]
        extra = sorted(set(inputs) - set(INPUT_NAMES))
        if missing or extra:
            raise ParameterError(
                f"inputs: missing {missing}, unknown {extra}; expected {list(INPUT_NAMES)}"
            )
        text = inputs["text"]
        if isinstance(text, str):
            text = [text]
        return self._held().transform(inputs["audio_features"], text)

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        return np.asarray(self._held().predict_proba_matrix(x), dtype=np.float32)

    # -- persistence -----
    def save(self, directory: Path, *, allow_pickle: bool = False) -> None:
        model = self._held()
        (directory / "multimodal.json").write_text(
            json.dumps({"format": SAVE_FORMAT, "model_type": model.model_type})
        )
        np.savez(directory / "audio_scaler.npz", **_scaler_arrays(model.audio_scaler))
        model.text.save(directory)
        if model.model_type == "transformer_fusion":
            from safetensors.torch import save_file

            net = model.parts["net"]
            state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
            save_file(state, str(directory / "net.safetensors"))
            return
        for key, part in model.parts.items():
            folder = directory / f"part_{key}"
            folder.mkdir()
            part.adapter.save(folder, allow_pickle=allow_pickle)
            (folder / "part.json").write_text(
                json.dumps(
                    {
                        "adapter": part.adapter.spec(),
                        "classes": [str(c) for c in part.classes],
                        "signature": part.signature["inputs"],
                    }
                )
            )

    def load_files(self, directory: Path, *, allow_pickle: bool = False) -> None:
        from ..models._data import LabelCodec
        from ..models.adapters import adapter_class
        from ..models.handle import ModelHandle

        info = json.loads((directory / "multimodal.json").read_text())
        if info.get("format") != SAVE_FORMAT:
            raise ParameterError(
                f"{directory} holds a multimodal model of format {info.get('format')!r}; this "
                f"version of ml_utilities reads {SAVE_FORMAT}"
            )
        desc = self.hyperparameters
        with np.load(directory / "audio_scaler.npz", allow_pickle=False) as data:
            scaler = _scaler_from({k: data[k] for k in data.files})
        text = TextVectorizer.load(desc["text"], directory)
        classes = list(desc["classes"])
        parts: dict[str, Any] = {}
        opts = dict(desc["options"])
        if self.architecture == "transformer_fusion":
            from safetensors.torch import load_file

            n_audio = int(desc["n_audio"])
            n_text = int(self.input_shape[0]) - n_audio
            net = _fusion_net(n_audio, n_text, len(classes), opts)
            net.load_state_dict(load_file(str(directory / "net.safetensors")))
            net.eval()
            parts["net"] = net
        else:
            keys = ["model"] if self.architecture == "early_fusion" else ["audio", "text"]
            for key in keys:
                folder = directory / f"part_{key}"
                spec = json.loads((folder / "part.json").read_text())
                adapter = adapter_class(spec["adapter"]["framework"]).from_spec(spec["adapter"])
                adapter.load_files(folder, allow_pickle=allow_pickle)
                parts[key] = ModelHandle(
                    adapter,
                    name=f"part-{key}",
                    task="classification",
                    config={},
                    codec=LabelCodec(spec["classes"]),
                    metrics={},
                    training={},
                    signature={"inputs": spec["signature"], "classes": spec["classes"]},
                    fingerprint="",
                )
        self.model = MultimodalModel(
            self.architecture,
            scaler,
            text,
            classes,
            {},
            parts,
            audio_columns=list(desc["audio_columns"]),
            options=opts,
        )

    def to_onnx(self, sample: np.ndarray, *, opset: int | None = None) -> OnnxExport:
        raise ParameterError(
            "a multimodal model has no ONNX export (its text block is a TF-IDF of raw text); "
            "serve it natively"
        )


register_adapter("multimodal", MultimodalAdapter)
