"""Images are judged by their header before anything is decoded (core.formats.validate):
the declared size of PNG, JPEG, BMP, TIFF, WebP and GIF files is read from their first
bytes, and a size beyond OpenCV's pixel limit is refused naming it (OpenCV itself fails
with "pixels <= CV_IO_MAX_IMAGE_PIXELS" from inside imread)."""
import struct
import zlib

import numpy as np
import pytest

from parascale.core.formats import validate as V

FERN_IMAGES = "llff_fern/data/nerf_llff_data/fern/images_8"
FOX_IMAGES = "instant_ngp_fox/data/nerf/fox/images"


def png_header(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def jpeg_header(width, height):
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def test_the_header_size_of_real_and_written_images(data_dir, tmp_path):
    cv2 = pytest.importorskip("cv2")
    for rel in (FERN_IMAGES, FOX_IMAGES):
        for p in sorted((data_dir / rel).iterdir())[:2]:
            img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            assert V.image_header_size(p) == (img.shape[1], img.shape[0]), p
    img = np.zeros((37, 53, 3), np.uint8)
    for ext in (".png", ".jpg", ".bmp", ".tiff", ".webp"):
        p = tmp_path / f"a{ext}"
        assert cv2.imwrite(str(p), img)
        assert V.image_header_size(p) == (53, 37), ext


@pytest.mark.parametrize("make", [png_header, jpeg_header])
def test_a_declared_size_beyond_opencv_is_refused_before_decoding(tmp_path, make):
    p = tmp_path / ("big.png" if make is png_header else "big.jpg")
    p.write_bytes(make(60000, 60000))
    with pytest.raises(V.TrackFormatError, match=r"big\.(png|jpg): the image header declares 60000x60000 pixels"):
        V.check_image_header(p)
    p.write_bytes(make(640, 480))
    assert V.check_image_header(p) == (640, 480)


def test_iter_frames_and_the_tracking_frames_refuse_it(tmp_path):
    pytest.importorskip("cv2")
    from parascale.core import reference, tracking

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        (frames / f"f{i}.png").write_bytes(png_header(100000, 100000))
    with pytest.raises(ValueError, match="100000x100000"):
        next(reference.iter_frames(frames))
    with pytest.raises(tracking.TrackingError, match="100000x100000"):
        out = tmp_path / "out"
        out.mkdir()
        tracking._frame_stream(frames, out)  # the headers are read before any frame is decoded
