"""The analysis loop: key frames → OCR → FTS5 index → observations (see docs/analyze.md).

Modules, one job each: ``sampler`` (which frames to read), ``ocr`` (tesseract), ``index``
(FTS5 search, sessions), ``loop`` (restartable chunk reader), ``observe`` (windows of
activity and reasoning requests), ``redact`` (secrets out of text and pixels), ``lock``
(one loop per data dir). Front ends use them through ``localvideo.service``.
"""
