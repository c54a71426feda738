"""Model-based track attributes of the ``full`` profile: age and gender from person crops, relative depth.

Any transformers image-classification checkpoint serves age or gender (labels come from its config);
any depth-estimation checkpoint (Depth Anything, DPT) serves depth.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class ImageClassifier:
    def __init__(self, path: Path, device: str = "cpu"):
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        self.torch = torch
        self.device = device
        self.processor = AutoImageProcessor.from_pretrained(str(path))
        self.model = AutoModelForImageClassification.from_pretrained(str(path)).to(device).eval()

    def classify(self, images_rgb: list[np.ndarray]) -> list[tuple[str, float]]:
        """Top label and its probability for each image."""
        if not images_rgb:
            return []
        with self.torch.inference_mode():
            logits = self.model(**self.processor(images=images_rgb, return_tensors="pt").to(self.device)).logits
        probabilities = logits.softmax(dim=-1).cpu().numpy()
        labels = self.model.config.id2label
        return [(str(labels[int(p.argmax())]), round(float(p.max()), 4)) for p in probabilities]


class DepthEstimator:
    def __init__(self, path: Path, device: str = "cpu"):
        import torch
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        self.torch = torch
        self.device = device
        self.processor = AutoImageProcessor.from_pretrained(str(path))
        self.model = AutoModelForDepthEstimation.from_pretrained(str(path)).to(device).eval()

    def relative_depth(self, image_bgr: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> list[float]:
        """Median model depth inside each box, scaled to [0, 1] over the frame (1 = nearest).

        Depth Anything and DPT predict relative inverse depth: larger means closer to the camera.
        """
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        with self.torch.inference_mode():
            predicted = self.model(**self.processor(images=[rgb], return_tensors="pt").to(self.device)).predicted_depth
        depth = cv2.resize(predicted[0].float().cpu().numpy(), (rgb.shape[1], rgb.shape[0]))
        low, high = float(depth.min()), float(depth.max())
        scaled = (depth - low) / (high - low) if high > low else np.zeros_like(depth)
        values = []
        for x1, y1, x2, y2 in boxes:
            region = scaled[max(0, int(y1)):max(int(y1) + 1, int(y2)), max(0, int(x1)):max(int(x1) + 1, int(x2))]
            values.append(round(float(np.median(region)), 4) if region.size else None)
        return values
