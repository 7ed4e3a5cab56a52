"""Media: images in (encoded for Kling) and videos out (decoded frames, audio); no network."""
