"""Local stand-ins for what a deployment talks to, shared by the tests and the benchmarks: cameras (an RTSP
server and a live HLS playlist fed in real time from a clip), and the system helpers they need."""
