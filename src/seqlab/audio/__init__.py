"""seqlab.audio: the audio front end (features), audio reading and the transcription readers."""
