"""smop-demo's page (gradio): the widgets and their wiring; what they do is ``session``'s.

Element ids (for the browser tests): ``video``, ``audio``, ``mode``, ``rate`` (an elastic model's), ``run``,
``transcript``, ``cell`` (the modality and rates that decoded it), ``error``, ``notes``, ``timings``, ``segments``,
``crops``, ``usage``.
"""

from typing import Optional

from smop.demo.session import DemoSession, usage_image

# gradio records at the camera's largest size (1920x1440); two cores cannot encode that as it comes.
WEBCAM_CONSTRAINTS = {"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}
CACHE_SWEEP = (60, 600)  # every 60 s, gradio deletes uploads and results older than 600 s
# What a request answers, in order (the /run endpoint's outputs, as an API client gets them).
OUTPUTS = ("transcript", "cell", "error", "notes", "timings", "segments", "crops", "usage")


def build(session: DemoSession, title: str, about: str = ""):
    """The page of ``session``: a ``gr.Blocks`` to queue and launch."""
    import gradio as gr

    def run(video: Optional[str], audio: Optional[str], mode: str, rate: Optional[str]):
        result = session.transcribe(video or audio, mode, rate or None)
        usage = usage_image(result.usage, f"expert usage: {result.name}") if result.usage else None
        shown = dict(
            transcript=result.text,
            cell=result.cell,
            error=gr.Textbox(value=result.error, visible=bool(result.error)),
            notes="\n".join(result.notes),
            timings=result.timings(),
            segments=result.rows(),
            crops=result.crops,
            usage=usage,
        )
        return tuple(shown[name] for name in OUTPUTS)

    with gr.Blocks(title=title, delete_cache=CACHE_SWEEP) as page:
        gr.Markdown(f"## {title}\n{about}")
        with gr.Row():
            with gr.Column():
                video = gr.Video(
                    label="video (upload, or record with the webcam)",
                    sources=["upload", "webcam"],
                    webcam_options=gr.WebcamOptions(mirror=False, constraints=WEBCAM_CONSTRAINTS),
                    include_audio=True,
                    height=320,
                    elem_id="video",
                )
                audio = gr.Audio(
                    label="or audio (upload, or record)",
                    sources=["upload", "microphone"],
                    type="filepath",
                    elem_id="audio",
                )
                mode = gr.Radio(session.modes, value=session.modes[0], label="modality", elem_id="mode")
                rates = session.rates(session.modes[0])  # none for a model trained at one rate pair
                rate = gr.Dropdown(
                    rates,
                    value=rates[0] if rates else None,
                    label="compression rate (frames per LLM token) of each input",
                    visible=bool(rates),
                    elem_id="rate",
                )
                button = gr.Button("Transcribe", variant="primary", elem_id="run")
                limits = session.limits
                gr.Markdown(
                    f"Files up to {limits.max_mb:g} MB and {limits.max_seconds:g} s; "
                    "the video is used when both are given."
                )
            with gr.Column():
                error = gr.Textbox(label="error", visible=False, elem_id="error")
                text = gr.Textbox(label="transcript", lines=2, elem_id="transcript")
                cell = gr.Textbox(label="decoded as (modality at compression rates)", elem_id="cell")
                notes = gr.Textbox(label="notes", lines=2, elem_id="notes")
                timings = gr.Textbox(label="timings", elem_id="timings")
                segments = gr.Dataframe(
                    headers=["start (s)", "end (s)", "text", "score"],
                    label="segments",
                    interactive=False,
                    elem_id="segments",
                )
                crops = gr.Image(label="mouth crops the model read (sampled)", type="numpy", elem_id="crops")
                usage = gr.Image(label="projector experts used for this input", type="numpy", elem_id="usage")
        if rates:  # each modality has its own rate pairs (the rates of the inputs it reads)
            mode.change(lambda m: gr.Dropdown(choices=session.rates(m), value=session.rates(m)[0]), mode, rate)
        shown = dict(transcript=text, cell=cell, error=error, notes=notes, timings=timings)
        shown.update(segments=segments, crops=crops, usage=usage)
        button.click(run, [video, audio, mode, rate], [shown[name] for name in OUTPUTS])
    return page
