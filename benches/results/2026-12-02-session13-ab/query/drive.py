import os
SLEEP=float(os.environ.get("SLEEP","0"))
import json,glob,sys,time,http.client,urllib.parse,statistics as st
port=int(sys.argv[1]); reps=int(sys.argv[2]); only=sys.argv[3].split(',') if len(sys.argv)>3 and sys.argv[3] else None
d=json.load(open(glob.glob('/tmp/s13/q1/query/*.json')[0]))
qs=[(q['query']['name'],q['query']['variant'],q['query']['expr'],q['query']['eval']) for q in d['queries']]
qs.append(('one','instant','1',{'type':'instant','time_ms':1796183229347}))
c=http.client.HTTPConnection('127.0.0.1',port)
for name,var,expr,ev in qs:
    if only and not any(o in name+' '+var for o in only): continue
    if ev['type']=='instant':
        p={'query':expr,'time':ev['time_ms']/1000}; path='/api/v1/query'
    else:
        p={'query':expr,'start':ev['start_ms']/1000,'end':ev['end_ms']/1000,'step':ev['step_ms']/1000}; path='/api/v1/query_range'
    body=urllib.parse.urlencode(p)
    lat=[]
    for i in range(reps+1):
        if SLEEP: time.sleep(SLEEP)
        t=time.perf_counter()
        c.request('POST',path,body,{'Content-Type':'application/x-www-form-urlencoded'})
        r=c.getresponse(); b=r.read()
        if i>0: lat.append((time.perf_counter()-t)*1000)
        if r.status!=200: print(b[:300]); break
    print(f"{name:18} {var:10} med {st.median(lat):8.3f} min {min(lat):8.3f} ms  ({len(b)} bytes)")
