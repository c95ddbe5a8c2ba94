"""smop-demo: a web page that transcribes an uploaded or recorded video with a packed model.

``session`` holds what the page does (limits, reading and decoding through smop-transcribe's path,
the results shown), in plain Python; ``page`` lays it out with gradio (the ``demo`` extra);
``smop.bin.demo`` is the command. ``browser`` drives the page in chromium (the browser tests, and a
screenshot), ``load`` sends it concurrent requests and reports the server's memory.
"""
