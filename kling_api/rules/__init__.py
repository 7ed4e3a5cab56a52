"""The rules: Kling's endpoints and models as data (the endpoint and capability tables), request shapes,
validation, the widget plan, tooltips, camera and motion. Pure: no network, no media decoding."""
