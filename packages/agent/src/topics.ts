/** The gossipsub topics of a mesh: one pair per mesh, named after its ULA prefix (derived from the mesh key). */
import { formatCidr, type Cidr } from '@wgmesh/core'

/** Records (and, in certificate mode, revocations). */
export function meshTopic (ula: Cidr): string {
  return `wgmesh/${formatCidr(ula)}/records`
}

/** Liveness notices (suspect / dead). */
export function noticeTopic (ula: Cidr): string {
  return `wgmesh/${formatCidr(ula)}/liveness`
}
