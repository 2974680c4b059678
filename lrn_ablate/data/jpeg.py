"""dataset.decode=device: the DataLoader workers only read the JPEG files, and the training device decodes
and resizes each batch (torchvision.io: nvJPEG on a CUDA GPU, libjpeg-turbo on the CPU; resizing by
torchvision's transforms v2), which leaves the CPU to the rest of the pipeline.

On the CPU the result is the workers' (PIL's) decoding pixel for pixel, greyscale included, which both
paths compute from the decoded RGB by PIL's rule.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms.v2.functional import resize

from lrn_ablate.errors import UserError

JPEG_START = b"\xff\xd8\xff"  # the SOI marker and the first segment's


def read_jpeg(path: Path) -> bytes | str:
    """The bytes of the JPEG file at `path`, or the sentence that says why it cannot be decoded on the
    device. (Bytes, not a tensor: a DataLoader worker passes each tensor through a shared-memory segment of
    its own, which for 64 small files a batch cost more than decoding them.)"""
    try:
        data = path.read_bytes()
    except OSError as err:
        return f"cannot read image {path} ({type(err).__name__}); remove or replace the file."
    if not data.startswith(JPEG_START):
        return f"dataset.decode=device decodes JPEG files only, and {path} is not one; use dataset.decode=workers."
    return data


def _decode(encoded: list[torch.Tensor], mode: ImageReadMode, device: torch.device) -> list[torch.Tensor]:
    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its decoders in favour of TorchCodec's; this project pins
        # torchvision <= 0.29.1, where they are the ones with a CUDA path.
        warnings.simplefilter("ignore", DeprecationWarning)
        return decode_jpeg(encoded, mode=mode, device=device)


def decode_batch(files: list[bytes], paths: list[Path], gray: bool, image_size: int | None,
                 device: torch.device) -> list[torch.Tensor]:
    """The files' uint8 CHW images on `device`, resized to image_size x image_size when it is set, as PIL
    resizes them (bilinear, antialiased when shrinking)."""
    encoded = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in files]
    try:
        images = _decode(encoded, ImageReadMode.RGB, device)
    except RuntimeError:
        for data, path in zip(encoded, paths, strict=True):  # a batch fails as a whole: find the file
            try:
                _decode([data], ImageReadMode.RGB, torch.device("cpu"))
            except RuntimeError as err:
                raise UserError(f"cannot decode image {path} ({str(err).splitlines()[0]}); remove or replace "
                                "the file.") from None
        raise
    if gray:
        images = [_grey(image) for image in images]
    if image_size is None:
        return images
    return [image if image.shape[1:] == (image_size, image_size) else resize(image, [image_size, image_size],
                                                                            antialias=True) for image in images]


def _grey(rgb: torch.Tensor) -> torch.Tensor:
    """PIL's convert("L"): (19595 R + 38470 G + 7471 B + 2^15) >> 16, the ITU-R 601-2 luma rounded. (The
    decoder's own greyscale output is the JPEG's luma channel, which differs from it where the decoded RGB
    was clipped.) A greyscale JPEG decoded to RGB has three equal channels, which this gives back."""
    weights = torch.tensor([19595, 38470, 7471], dtype=torch.int32, device=rgb.device)
    return (((rgb.int() * weights[:, None, None]).sum(0, keepdim=True) + 32768) >> 16).to(torch.uint8)
