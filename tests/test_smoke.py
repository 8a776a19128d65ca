from conftest import decode_audio, wer


def test_speak_as_returns_intelligible_wav(client, transcribe):
    response = client.get("/speak_as/jm_kumo", params={"prompt": "The weather is lovely today."})
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    audio, rate = decode_audio(response.content)
    assert rate == 24_000
    assert 1.0 < audio.size / rate < 5.0
    assert wer("The weather is lovely today.", transcribe(audio, rate)) <= 0.2
