import json, os, urllib.request
port = json.load(open(os.environ["PROCNODE_SETTINGS"]))["parameters"]["port"]
urllib.request.urlopen(f"http://127.0.0.1:{port}/system", timeout=3).read()
print("reached the node")
