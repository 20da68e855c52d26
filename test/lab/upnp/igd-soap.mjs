#!/usr/bin/env node
/* global fetch */
// Raw UPnP IGD v2 SOAP call, independent of @achingbrain/nat-port-mapper (to tell library bugs
// from gateway behaviour). Run inside a lab host:
//   node igd-soap.mjs DESC_URL ACTION [Name=Value ...]
//   node igd-soap.mjs http://192.0.2.1:5000/rootDesc.xml DeletePortMapping NewRemoteHost= NewExternalPort=51821 NewProtocol=UDP
// Finds the controlURL of urn:schemas-upnp-org:service:WANIPConnection:2 in the device
// description, POSTs the action and prints {"status":N,"body":"..."}; exit 0 if HTTP 200.
const [desc, action, ...kv] = process.argv.slice(2)
if (desc === undefined || action === undefined) {
  console.error('usage: igd-soap.mjs DESC_URL ACTION [Name=Value ...]')
  process.exit(2)
}
const SERVICE = 'urn:schemas-upnp-org:service:WANIPConnection:2'
const xml = await (await fetch(desc, { signal: AbortSignal.timeout(3000) })).text()
const svc = xml.split('<service>').find(s => s.includes(`<serviceType>${SERVICE}</serviceType>`))
const control = svc && /<controlURL>([^<]+)<\/controlURL>/.exec(svc)?.[1]
if (control === undefined) {
  console.log(JSON.stringify({ status: 0, body: `no ${SERVICE} in ${desc}` }))
  process.exit(1)
}
const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const args = kv.map(p => { const i = p.indexOf('='); return `<${p.slice(0, i)}>${esc(p.slice(i + 1))}</${p.slice(0, i)}>` }).join('')
const body = '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
  's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>' +
  `<u:${action} xmlns:u="${SERVICE}">${args}</u:${action}></s:Body></s:Envelope>`
const res = await fetch(new URL(control, desc), {
  method: 'POST',
  headers: { 'Content-Type': 'text/xml; charset="utf-8"', SOAPAction: `"${SERVICE}#${action}"` },
  body,
  signal: AbortSignal.timeout(3000)
})
console.log(JSON.stringify({ status: res.status, body: await res.text() }))
process.exitCode = res.status === 200 ? 0 : 1
